//! VQA fine-tuning (reference §3.1): `[CLS] question` (truncated to `max_input_length`) → text
//! encoder → fusion with the image; the decoder reads every distinct answer `[CLS] answer [SEP]`
//! against the fused [visual; text] memory of its question; the loss is
//! Σ_answers weight × (summed token NLL of the answer) / questions in the batch, as
//! `BertLMHeadModel` with `reduction='none'` and `vqa_mplug.py`.
//!
//! The reference also runs a momentum model for distillation, but never passes `alpha` to the
//! decoder, so its distillation weight is 0 and the term is a no-op (§2.5 QUIRK): no momentum
//! model is kept here, which gives the same losses and gradients for less work.

use std::collections::BTreeMap;

use tch::{Device, Kind, Reduction, Tensor};

use crate::error::{Error, Result};
use crate::eval::task_model::TaskParts;
use crate::loader::sample::SampleKind;
use crate::loader::{AnswerTensors, HostBatch};
use crate::model::MplugModel;
use crate::text::BertTokenizer;
use crate::train::config::TrainConfig;
use crate::train::task::{StepContext, TaskLosses, TrainTask, metric};

/// Token id the loss ignores.
const IGNORE: i64 = -100;

/// VQA fine-tuning.
pub struct VqaTask {
    tokenizer: std::sync::Arc<BertTokenizer>,
    device: Device,
}

impl VqaTask {
    /// A task whose answers are tokenised with `tokenizer`.
    pub fn new(tokenizer: std::sync::Arc<BertTokenizer>, device: Device) -> Self {
        VqaTask { tokenizer, device }
    }
}

/// The reference's VQA loss of a batch: `images` `[B, 3, S, S]`, questions `[B, L]`, and the
/// answers of each question in order.
pub fn vqa_loss(
    model: &MplugModel,
    images: &Tensor,
    question_ids: &Tensor,
    question_mask: &Tensor,
    answers: &AnswerTensors,
    train: bool,
) -> Tensor {
    let visual = model.encode_image(images, train);
    let text = model.encode_text(question_ids, question_mask, train);
    let (fv, ft) = model.fuse(&visual, &text, question_mask, train);
    let (memory, memory_mask) = MplugModel::decoder_memory(&fv, &ft, question_mask);
    let b = memory.size()[0];
    // question b's memory once per answer of it (the output size given: no device→host count)
    let owner = Tensor::arange(b, (Kind::Int64, memory.device())).repeat_interleave_self_tensor(
        &answers.counts,
        0,
        answers.ids.size()[0],
    );
    let memory = memory.index_select(0, &owner);
    let memory_mask = memory_mask.index_select(0, &owner);
    let logits = model.decode(&answers.ids, &answers.mask, &memory, &memory_mask, train);
    let dims = logits.size();
    let (a, l, v) = (dims[0], dims[1], dims[2]);
    let labels = answers.ids.masked_fill(&answers.mask.eq(0), IGNORE);
    let nll = logits
        .narrow(1, 0, l - 1)
        .reshape([-1, v])
        .to_kind(Kind::Float)
        .cross_entropy_loss::<Tensor>(
            &labels.narrow(1, 1, l - 1).reshape([-1]),
            None,
            Reduction::None,
            IGNORE,
            0.0,
        )
        .view([a, l - 1])
        .sum_dim_intlist(1, false, Kind::Float);
    (&answers.weights * nll).sum(Kind::Float) / b as f64
}

impl TrainTask for VqaTask {
    fn sample_kind(&self) -> SampleKind {
        SampleKind::Question(self.tokenizer.clone())
    }

    fn parts(&self) -> TaskParts {
        TaskParts::FusedDecoder
    }

    fn losses(
        &mut self,
        model: &MplugModel,
        batch: &HostBatch,
        _cfg: &TrainConfig,
        _ctx: StepContext,
    ) -> Result<TaskLosses> {
        let t = batch.to_tensors(self.device, true);
        let answers = t
            .answers
            .as_ref()
            .ok_or_else(|| Error::internal("a VQA batch without answers"))?;
        if batch.answers.as_ref().is_some_and(|a| a.weights.is_empty()) {
            return Err(Error::input(
                "a batch of questions without answers: the split holds test questions \
                 (train.split names the split to fine-tune on)",
            ));
        }
        let total = vqa_loss(
            model,
            &t.images,
            &t.input_ids,
            &t.attention_mask,
            answers,
            true,
        );
        Ok(TaskLosses {
            values: BTreeMap::from([("loss_vqa".to_string(), metric(&total))]),
            total,
        })
    }
}
