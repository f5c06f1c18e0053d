//! Visual grounding (reference §3.5, `models/model_grounding_mplug.py`): the box as four coordinate
//! tokens decoded after `[unused339]` from the fused [visual; text] memory.
//!
//! Target = the normalised (cx, cy, w, h) clamped to [0, 1], each as bin ⌊v · 336⌋ → token
//! `[unused340 + bin]`; the decoder reads `[prefix, t_cx, t_cy, t_w, t_h]` and its logits plus
//! `bbox_prob_mask` predict the four tokens; per-token CE (`reduction='none'`). With the reference's
//! `weight_decoder`, the CE is weighted, without gradient, by the L1 distance of the argmax box to
//! the target (per coordinate, clamped to [0, 5]) and by 1 − GIoU. The reference multiplies a
//! `[B, 1, 4]` loss by `[B, 4]` and `[B, 1]` weights, which broadcasts to `[B, B, 4]`: its mean is
//! ¼ Σ_k mean_i CE[i,k] · mean_j L1[j,k]·(1 − GIoU_j), the weights averaged over the batch. That is
//! the default, for parity; `train.grounding_per_sample_weights` weighs each expression by its own.

use std::collections::BTreeMap;
use std::sync::Arc;

use tch::{Device, Kind, Reduction, Tensor};

use crate::error::{Error, Result};
use crate::eval::grounding_task::{COORD_BINS, FIRST_BIN_ID, PREFIX_ID, coordinate_mask};
use crate::eval::task_model::TaskParts;
use crate::loader::HostBatch;
use crate::loader::sample::SampleKind;
use crate::model::MplugModel;
use crate::text::BertTokenizer;
use crate::train::config::TrainConfig;
use crate::train::task::{StepContext, TaskLosses, TrainTask, metric};

/// Grounding fine-tuning.
pub struct GroundingTask {
    tokenizer: Arc<BertTokenizer>,
    device: Device,
}

impl GroundingTask {
    /// A task tokenising phrases with `tokenizer`.
    pub fn new(tokenizer: Arc<BertTokenizer>, device: Device) -> Self {
        GroundingTask { tokenizer, device }
    }
}

/// What one grounding batch gives.
#[derive(Debug)]
pub struct GroundingOutput {
    /// The loss.
    pub loss: Tensor,
    /// `[B, 4]` the argmax boxes (cx, cy, w, h), no gradient.
    pub predicted: Tensor,
    /// `[B]` IoU of the argmax boxes with the targets.
    pub iou: Tensor,
}

/// (cx, cy, w, h) → corners, `[N, 4]`.
fn corners(b: &Tensor) -> Tensor {
    let (c, s) = (b.narrow(1, 0, 2), b.narrow(1, 2, 2));
    Tensor::cat(&[&c - &s / 2.0, &c + &s / 2.0], 1)
}

/// IoU and GIoU of corresponding corner boxes (`generalized_box_iou`'s diagonal), each `[N]`.
pub fn iou_and_giou(a: &Tensor, b: &Tensor) -> (Tensor, Tensor) {
    let area = |x: &Tensor| (x.select(1, 2) - x.select(1, 0)) * (x.select(1, 3) - x.select(1, 1));
    let lt = a.narrow(1, 0, 2).maximum(&b.narrow(1, 0, 2));
    let rb = a.narrow(1, 2, 2).minimum(&b.narrow(1, 2, 2));
    let wh = (rb - lt).clamp_min(0.0);
    let inter = wh.select(1, 0) * wh.select(1, 1);
    let union = area(a) + area(b) - &inter;
    let lt = a.narrow(1, 0, 2).minimum(&b.narrow(1, 0, 2));
    let rb = a.narrow(1, 2, 2).maximum(&b.narrow(1, 2, 2));
    let wh = (rb - lt).clamp_min(0.0);
    let enclosing = wh.select(1, 0) * wh.select(1, 1);
    // Two empty boxes (a target clipped away by the crop quirk, a zero-width argmax box) make
    // the reference's 0/0 a NaN that ends training; here their IoU is 0 and an empty enclosing
    // box adds no penalty. Non-degenerate boxes are computed exactly as the reference.
    let zero = union.zeros_like();
    // `x.where_self(cond, other)` is torch.where(cond, x, other)
    let iou = (&inter / &union).where_self(&union.gt(0.0), &zero);
    let penalty = ((&enclosing - &union) / &enclosing).where_self(&enclosing.gt(0.0), &zero);
    let giou = &iou - penalty;
    (iou, giou)
}

/// The reference's grounding loss: `images` `[B, 3, S, S]` normalised and padded, the phrase
/// `ids`/`mask` `[B, L]`, `targets` `[B, 4]` float (cx, cy, w, h) / S.
pub fn grounding_loss(
    model: &MplugModel,
    images: &Tensor,
    ids: &Tensor,
    mask: &Tensor,
    targets: &Tensor,
    per_sample_weights: bool,
    train: bool,
) -> GroundingOutput {
    let b = ids.size()[0];
    let device = ids.device();
    let v = model.encode_image(images, train);
    let t = model.encode_text(ids, mask, train);
    let (fv, ft) = model.fuse(&v, &t, mask, train);
    let (memory, memory_mask) = MplugModel::decoder_memory(&fv, &ft, mask);
    let bins = (targets.clamp(0.0, 1.0) * COORD_BINS as f64)
        .floor()
        .to_kind(Kind::Int64)
        + FIRST_BIN_ID;
    let prefix = Tensor::full([b, 1], PREFIX_ID, (Kind::Int64, device));
    let seq = Tensor::cat(&[prefix, bins.shallow_clone()], 1);
    let logits = model
        .decode(&seq, &seq.ones_like(), &memory, &memory_mask, train)
        .to_kind(Kind::Float);
    let vocab = logits.size()[2];
    let logits = logits + coordinate_mask(vocab, device);
    let pred = logits.narrow(1, 0, 4);
    let ce = pred
        .reshape([-1, vocab])
        .cross_entropy_loss::<Tensor>(&bins.reshape([-1]), None, Reduction::None, -100, 0.0)
        .view([b, 4]);
    let targets = targets.to_kind(Kind::Float);
    let (predicted, l1, giou_weight, iou) = tch::no_grad(|| {
        let predicted =
            (pred.argmax(-1, false) - FIRST_BIN_ID).to_kind(Kind::Float) / COORD_BINS as f64;
        let l1 = (&predicted - &targets).abs().clamp(0.0, 5.0);
        let (iou, giou) = iou_and_giou(&corners(&predicted), &corners(&targets));
        let giou_weight: Tensor = 1.0 - giou;
        (predicted, l1, giou_weight, iou)
    });
    let loss = if per_sample_weights {
        (ce * l1 * giou_weight.unsqueeze(1)).mean(Kind::Float)
    } else {
        // [B, 1, 4] · [B, 4] · [B, 1] → [B, B, 4], as the reference's tensors broadcast
        (ce.view([b, 1, 4]) * l1 * giou_weight.unsqueeze(1)).mean(Kind::Float)
    };
    GroundingOutput {
        loss,
        predicted,
        iou,
    }
}

impl TrainTask for GroundingTask {
    fn sample_kind(&self) -> SampleKind {
        SampleKind::Grounding(self.tokenizer.clone())
    }

    fn parts(&self) -> TaskParts {
        TaskParts::FusedDecoder
    }

    fn losses(
        &mut self,
        model: &MplugModel,
        batch: &HostBatch,
        cfg: &TrainConfig,
        _ctx: StepContext,
    ) -> Result<TaskLosses> {
        let t = batch.to_tensors(self.device, true);
        let targets = t
            .boxes
            .as_ref()
            .ok_or_else(|| Error::internal("a grounding batch without boxes"))?;
        let out = grounding_loss(
            model,
            &t.images,
            &t.input_ids,
            &t.attention_mask,
            targets,
            cfg.train.grounding_per_sample_weights,
            true,
        );
        let hits = out.iou.ge(0.5).to_kind(Kind::Float).mean(Kind::Float);
        Ok(TaskLosses {
            values: BTreeMap::from([
                ("loss_grounding".to_string(), metric(&out.loss)),
                ("acc_grounding".to_string(), metric(&hits)),
            ]),
            total: out.loss,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// By hand: [0,0,2,2] and [1,1,3,3] overlap in 1, union 7, enclosing 9 → IoU 1/7, GIoU
    /// 1/7 − 2/9; two empty boxes give 0 and 0, not NaN.
    #[test]
    fn giou_by_hand() {
        let a = Tensor::from_slice(&[0.0f64, 0.0, 2.0, 2.0, 0.5, 0.5, 0.5, 0.5]).view([2, 4]);
        let b = Tensor::from_slice(&[1.0f64, 1.0, 3.0, 3.0, 0.5, 0.5, 0.5, 0.5]).view([2, 4]);
        let (iou, giou) = iou_and_giou(&a, &b);
        let iou = Vec::<f64>::try_from(&iou).unwrap();
        let giou = Vec::<f64>::try_from(&giou).unwrap();
        assert!((iou[0] - 1.0 / 7.0).abs() < 1e-12);
        assert!((giou[0] - (1.0 / 7.0 - 2.0 / 9.0)).abs() < 1e-12);
        assert_eq!((iou[1], giou[1]), (0.0, 0.0));
    }
}
