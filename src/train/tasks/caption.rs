//! Captioning, cross-entropy stage (reference §3.2): the decoder reads `[CLS] caption [SEP]`
//! (one sample per caption, truncated to `max_input_length` 25) against the visual tokens only —
//! no text encoder, no fusion — and the loss is `BertPrefixModel`'s plain mean token CE over the
//! batch (it ignores `reduction`). Accumulation over `train.grad_accum_steps` micro-batches (the
//! reference's `--accum_steps` 4) divides each loss and steps every 4 iterations, as there.

use std::collections::BTreeMap;
use std::sync::Arc;

use tch::{Device, Kind, Tensor};

use crate::error::Result;
use crate::eval::task_model::TaskParts;
use crate::loader::HostBatch;
use crate::loader::sample::SampleKind;
use crate::model::MplugModel;
use crate::text::BertTokenizer;
use crate::train::config::TrainConfig;
use crate::train::objectives::lm_loss;
use crate::train::task::{StepContext, TaskLosses, TrainTask, metric};

/// Caption fine-tuning with cross-entropy.
pub struct CaptionTask {
    tokenizer: Arc<BertTokenizer>,
    device: Device,
}

impl CaptionTask {
    /// A task whose raw captions are tokenised with `tokenizer`.
    pub fn new(tokenizer: Arc<BertTokenizer>, device: Device) -> Self {
        CaptionTask { tokenizer, device }
    }
}

/// The reference's caption loss: `images` `[B, 3, S, S]`, targets `[B, L]` (`[CLS] … [SEP]`,
/// 0-padded) with their mask.
pub fn caption_loss(
    model: &MplugModel,
    images: &Tensor,
    ids: &Tensor,
    mask: &Tensor,
    train: bool,
) -> Tensor {
    let visual = model.encode_image(images, train);
    let memory_mask = MplugModel::visual_memory_mask(&visual);
    let logits = model.decode(ids, mask, &visual, &memory_mask, train);
    let labels = ids.masked_fill(&mask.eq(0), -100);
    lm_loss(&logits, &labels).to_kind(Kind::Float)
}

impl TrainTask for CaptionTask {
    fn sample_kind(&self) -> SampleKind {
        SampleKind::CaptionTarget(self.tokenizer.clone())
    }

    fn parts(&self) -> TaskParts {
        TaskParts::VisualDecoder
    }

    fn losses(
        &mut self,
        model: &MplugModel,
        batch: &HostBatch,
        _cfg: &TrainConfig,
        _ctx: StepContext,
    ) -> Result<TaskLosses> {
        let t = batch.to_tensors(self.device, true);
        let total = caption_loss(model, &t.images, &t.input_ids, &t.attention_mask, true);
        Ok(TaskLosses {
            values: BTreeMap::from([("loss_caption".to_string(), metric(&total))]),
            total,
        })
    }
}
