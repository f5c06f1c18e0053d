//! `mplug eval vqa`: answers generated for every question of an `image_qa.v1` split, as the
//! reference's `vqa_mplug.py` evaluation (reference §3.1): input `[CLS] question` (no truncation,
//! no `[SEP]`), memory = fused [visual; text], beam search (beam 5, min 1, max 10), the top beam
//! decoded and stripped of `[SEP]`/`[CLS]`/`[PAD]`. With an answer list, `rank_answer` instead
//! ([`super::answer_ranking`]).

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, Int32Type};
use tch::Device;

use super::answer_ranking::{AnswerList, rank_answers};
use super::batches::{EvalBatch, ItemSelection, squash, stream, text_tensors};
use super::settings::EvalSettings;
use super::split::EvalSplit;
use super::vqa::VqaGroundTruth;
use crate::error::{Error, Result};
use crate::loader::text::with_cls;
use crate::model::MplugModel;
use crate::model::generate::{beam_search, greedy};
use crate::text::BertTokenizer;
use crate::text::decode::decode_generated;

/// The `image_qa.v1` columns a question item is built from.
pub const QA_COLUMNS: [&str; 9] = [
    "question_ids",
    "questions",
    "multiple_choice_answers",
    "question_tokens",
    "answers",
    "answer_weights",
    "answer_counts",
    "question_types",
    "answer_types",
];

/// One question to answer.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct QaItem {
    /// `question_id`.
    pub question_id: String,
    /// The image's id.
    pub image_id: String,
    /// The question as stored.
    pub question: String,
    /// VQA's `multiple_choice_answer` (empty where the source has none).
    pub multiple_choice_answer: String,
    /// The question's WordPiece ids (no special tokens).
    pub tokens: Vec<i32>,
    /// Its human answers, when the split has them.
    pub truth: Option<VqaGroundTruth>,
}

/// A generated answer.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct QaPrediction {
    /// The question.
    pub item: QaItem,
    /// The decoded answer.
    pub answer: String,
    /// The top beam's token ids (start token and EOS included).
    pub tokens: Vec<i64>,
}

fn column<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a dyn Array> {
    b.column_by_name(name)
        .map(|c| c.as_ref())
        .ok_or_else(|| Error::format(format!("image_qa.v1 shard lacks column `{name}`")))
}

fn strings(a: &dyn Array) -> Vec<String> {
    let s = a.as_string::<i32>();
    (0..s.len()).map(|i| s.value(i).to_string()).collect()
}

/// The questions of row `r`. The human answers come back from the stored distinct answers and
/// their weights (count / number of answers), so the official accuracy sees the ten raw answers.
pub fn qa_items(b: &RecordBatch, r: usize) -> Result<Vec<QaItem>> {
    let list = |name: &str| -> Result<arrow::array::ArrayRef> {
        Ok(column(b, name)?.as_list::<i32>().value(r))
    };
    let ids = strings(list("question_ids")?.as_ref());
    let questions = strings(list("questions")?.as_ref());
    let majority = strings(list("multiple_choice_answers")?.as_ref());
    let image_id = column(b, "image_id")?
        .as_string::<i32>()
        .value(r)
        .to_string();
    let tokens = list("question_tokens")?;
    let tokens = tokens.as_list::<i32>();
    let answers = list("answers")?;
    let answers = answers.as_list::<i32>();
    let weights = list("answer_weights")?;
    let weights = weights.as_list::<i32>();
    let counts = list("answer_counts")?;
    let counts = counts.as_primitive::<Int32Type>();
    let qtypes = strings(list("question_types")?.as_ref());
    let atypes = strings(list("answer_types")?.as_ref());
    let mut items = Vec::with_capacity(ids.len());
    for (q, question_id) in ids.into_iter().enumerate() {
        let distinct = strings(answers.value(q).as_ref());
        let w = weights.value(q);
        let w = w.as_primitive::<Float64Type>();
        let n = counts.value(q).max(0) as f64;
        let mut human = Vec::new();
        for (k, a) in distinct.iter().enumerate() {
            let times = (w.value(k) * n).round() as usize;
            human.extend(std::iter::repeat_n(a.clone(), times));
        }
        let truth = (!human.is_empty()).then(|| VqaGroundTruth {
            question_id: question_id.clone(),
            question_type: qtypes.get(q).cloned().unwrap_or_default(),
            answer_type: atypes.get(q).cloned().unwrap_or_default(),
            answers: human,
        });
        items.push(QaItem {
            question_id,
            image_id: image_id.clone(),
            question: questions.get(q).cloned().unwrap_or_default(),
            multiple_choice_answer: majority.get(q).cloned().unwrap_or_default(),
            tokens: tokens
                .value(q)
                .as_primitive::<Int32Type>()
                .values()
                .to_vec(),
            truth,
        });
    }
    Ok(items)
}

/// How answers are produced.
#[derive(Clone, Copy)]
pub enum Answering<'a> {
    /// Beam search (the reference's image VQA), decoded with this tokenizer.
    Generate(&'a BertTokenizer),
    /// `rank_answer` over a fixed list, re-scoring the top `k_test`.
    Rank(&'a AnswerList),
}

/// One answer: its token ids (the top hypothesis, or the ranked answer's `[CLS] answer [SEP]`) and,
/// when ranked, the list's own text (the reference reports `answer_list[i]`, not a decoding).
pub type Answer = (Vec<i64>, Option<String>);

/// Answers one batch.
pub fn answer_batch(
    model: &MplugModel,
    batch: &EvalBatch<QaItem>,
    settings: &EvalSettings,
    answering: Answering<'_>,
    device: Device,
) -> Vec<Answer> {
    let max_len = model.config().bert.max_position_embeddings as usize;
    let seqs: Vec<Vec<i64>> = batch
        .items
        .iter()
        .map(|it| with_cls(&it.tokens, max_len))
        .collect();
    let (ids, mask) = text_tensors(&seqs, device);
    tch::no_grad(|| {
        let v = model.encode_image(&batch.images(device), false);
        let t = model.encode_text(&ids, &mask, false);
        let (fv, ft) = model.fuse(&v, &t, &mask, false);
        let (memory, memory_mask) = MplugModel::decoder_memory(&fv, &ft, &mask);
        if let Answering::Rank(list) = answering {
            return rank_answers(model, &memory, &memory_mask, list, settings.k_test)
                .into_iter()
                .map(|(a, _)| (list.ids[a].clone(), Some(list.answers[a].clone())))
                .collect();
        }
        let g = &settings.generate;
        if g.beam_size <= 1 {
            greedy(model, &memory, &memory_mask, None, g)
                .into_iter()
                .map(|h| (h.tokens, None))
                .collect()
        } else {
            beam_search(model, &memory, &memory_mask, None, g)
                .into_iter()
                .map(|hs| {
                    (
                        hs.into_iter().next().map(|h| h.tokens).unwrap_or_default(),
                        None,
                    )
                })
                .collect()
        }
    })
}

/// Answers this rank's questions of `split`, in split order; `progress` gets the count done.
pub fn run(
    model: &MplugModel,
    split: &EvalSplit,
    selection: ItemSelection,
    settings: &EvalSettings,
    answering: Answering<'_>,
    device: Device,
    progress: &dyn Fn(u64),
) -> Result<Vec<QaPrediction>> {
    let mut out = Vec::new();
    let image_res = model.config().vision.image_res as u32;
    stream(
        split,
        &QA_COLUMNS,
        &qa_items,
        &squash(image_res),
        selection,
        image_res,
        settings.batch_size,
        &mut |batch| {
            let tokens = answer_batch(model, &batch, settings, answering, device);
            progress(batch.items.len() as u64);
            for (item, (tokens, text)) in batch.items.into_iter().zip(tokens) {
                out.push(QaPrediction {
                    answer: match (text, answering) {
                        (Some(t), _) => t,
                        (None, Answering::Generate(tok)) => decode_generated(tok, &tokens),
                        (None, Answering::Rank(_)) => String::new(),
                    },
                    item,
                    tokens,
                });
            }
            Ok(())
        },
    )?;
    Ok(out)
}
