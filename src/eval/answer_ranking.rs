//! Answer-list ranking, the reference's `rank_answer` (ALBEF's, used by mPLUG's video QA and by
//! `mplug eval vqa --rank-answers`):
//! 1. from `[CLS]`, the probability of every answer's first token (softmax over the vocabulary);
//! 2. the `k` answers whose first token is likeliest;
//! 3. each re-scored as log p(first token) − Σ NLL(all its tokens) — the first token counted twice,
//!    the reference's quirk, kept for parity — under the decoder's teacher forcing (answers are
//!    `[CLS] answer [SEP]`, padded; padding ignored);
//! 4. softmax over the `k` scores; the best answer wins.

use std::path::Path;

use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};
use crate::loader::text::{CLS, PAD};
use crate::model::MplugModel;
use crate::text::BertTokenizer;

/// Candidate answers, tokenised as the reference tokenises `answer + "[SEP]"`.
#[derive(Debug, Clone)]
pub struct AnswerList {
    /// The answers.
    pub answers: Vec<String>,
    /// `[CLS] tokens [SEP]` of each.
    pub ids: Vec<Vec<i64>>,
}

impl AnswerList {
    /// Tokenises `answers` (order kept; the index is the answer's label).
    pub fn new(answers: Vec<String>, tokenizer: &BertTokenizer) -> Result<Self> {
        if answers.is_empty() {
            return Err(Error::input("the answer list is empty"));
        }
        let ids = answers
            .iter()
            .map(|a| {
                let mut v = vec![CLS];
                v.extend(
                    tokenizer
                        .encode(&format!("{a}[SEP]"))?
                        .iter()
                        .map(|&t| t as i64),
                );
                Ok(v)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(AnswerList { answers, ids })
    }

    /// Reads a JSON list of strings (the reference's `answer_list.json`).
    pub fn from_file(path: &Path, tokenizer: &BertTokenizer) -> Result<Self> {
        let root = super::results::read_json(path)?;
        let answers: Vec<String> = root
            .as_array()
            .and_then(|l| l.iter().map(|a| a.as_str().map(String::from)).collect())
            .ok_or_else(|| super::results::bad(path, "expected a JSON list of answer strings"))?;
        Self::new(answers, tokenizer)
    }

    /// Padded ids and mask `[A, L]` on `device`.
    fn tensors(&self, device: Device) -> (Tensor, Tensor) {
        let len = self.ids.iter().map(Vec::len).max().unwrap_or(1);
        let mut ids = Vec::with_capacity(self.ids.len() * len);
        let mut mask = Vec::with_capacity(self.ids.len() * len);
        for a in &self.ids {
            ids.extend_from_slice(a);
            ids.extend(std::iter::repeat_n(PAD, len - a.len()));
            mask.extend(std::iter::repeat_n(1i64, a.len()));
            mask.extend(std::iter::repeat_n(0i64, len - a.len()));
        }
        let shape = [self.ids.len() as i64, len as i64];
        (
            Tensor::from_slice(&ids).view(shape).to_device(device),
            Tensor::from_slice(&mask).view(shape).to_device(device),
        )
    }
}

/// The ranked answer of each question: (answer index, its probability among the `k` re-scored).
pub fn rank_answers(
    model: &MplugModel,
    memory: &Tensor,
    memory_mask: &Tensor,
    list: &AnswerList,
    k: usize,
) -> Vec<(usize, f64)> {
    tch::no_grad(|| {
        let device = memory.device();
        let (answer_ids, answer_mask) = list.tensors(device);
        let k = (k as i64).min(answer_ids.size()[0]).max(1);
        let q = memory.size()[0];
        let start = Tensor::full([q, 1], CLS, (Kind::Int64, device));
        let first = model
            .decode(&start, &start.ones_like(), memory, memory_mask, false)
            .select(1, 0)
            .to_kind(Kind::Float)
            .softmax(-1, Kind::Float)
            .index_select(1, &answer_ids.select(1, 1)); // [Q, A]
        let (topk_probs, topk_ids) = first.topk(k, 1, true, true);
        let mut out = Vec::with_capacity(q as usize);
        for i in 0..q {
            let ids_i = topk_ids.get(i);
            let input = answer_ids.index_select(0, &ids_i); // [k, L]
            let att = answer_mask.index_select(0, &ids_i);
            let mem = memory.get(i).unsqueeze(0).expand([k, -1, -1], false);
            let mem_mask = memory_mask.get(i).unsqueeze(0).expand([k, -1], false);
            let logits = model.decode(&input, &att, &mem, &mem_mask, false);
            let len = input.size()[1];
            let log_probs = logits
                .narrow(1, 0, len - 1)
                .to_kind(Kind::Float)
                .log_softmax(-1, Kind::Float);
            let targets = input.narrow(1, 1, len - 1);
            let picked = log_probs
                .gather(2, &targets.unsqueeze(-1), false)
                .squeeze_dim(-1);
            let valid = targets.ne(PAD).to_kind(Kind::Float);
            let nll = -(picked * valid).sum_dim_intlist(1, false, Kind::Float); // [k]
            let score = topk_probs.get(i).log() - nll;
            let probs = score.softmax(-1, Kind::Float);
            let best = probs.argmax(0, false).int64_value(&[]);
            out.push((
                ids_i.int64_value(&[best]) as usize,
                probs.double_value(&[best]),
            ));
        }
        out
    })
}
