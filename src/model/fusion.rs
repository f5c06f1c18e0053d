//! The fusion encoder and mPLUG's cross-modal skip-connection (`FusionEncoder` in
//! `models/modeling_mplug.py`, reference §1.5).
//!
//! The original instantiates `num_hidden_layers` (12) layers and runs only the last `fusion_layers`
//! (6). We build only those, under their original names `fusion_encoder.encoder.layer.{start+j}`.
//! Running layer j (relative index) is
//! - **asymmetric co-attention** when `j == 0 || j % stride_layer != 0`: text ← FFN(Cross(Self(text),
//!   visual)); the visual stream is untouched;
//! - **connected attention** otherwise: X = [visual; text] → Self (the layer's own self-attention
//!   weights, bidirectional) → FFN; then visual ← visual + X[:, :Nv] and text ← X[:, Nv:]. Its
//!   `crossattention` weights exist in checkpoints but never run ([`FusionEncoder::dormant_layers`]).

use tch::Tensor;
use tch::nn;

use super::attention::padding_mask;
use super::bert::BertLayer;
use super::config::BertConfig;

/// Whether running fusion layer `j` (0-based, relative to the first running layer) is a
/// connected-attention layer under `stride`.
pub fn is_connected_layer(j: i64, stride: i64) -> bool {
    j != 0 && j % stride == 0
}

/// `fusion_encoder`.
#[derive(Debug)]
pub struct FusionEncoder {
    layers: Vec<BertLayer>,
    stride: i64,
    start: i64,
}

impl FusionEncoder {
    /// Builds the running layers under `p` (`fusion_encoder`).
    pub fn new(p: nn::Path, cfg: &BertConfig) -> Self {
        let start = cfg.num_hidden_layers - cfg.fusion_layers;
        let layer = &p / "encoder" / "layer";
        FusionEncoder {
            layers: (0..cfg.fusion_layers)
                .map(|j| BertLayer::new(&layer / (start + j), cfg, true))
                .collect(),
            stride: cfg.stride_layer,
            start,
        }
    }

    /// Original indices of the connected-attention layers (whose `crossattention` never runs).
    pub fn dormant_layers(&self) -> Vec<i64> {
        (0..self.layers.len() as i64)
            .filter(|&j| is_connected_layer(j, self.stride))
            .map(|j| self.start + j)
            .collect()
    }

    /// Runs the schedule. `visual` [B, Nv, H] (all visible), `text` [B, Lt, H] with 0/1 `text_mask`
    /// [B, Lt] → (visual', text').
    pub fn forward(
        &self,
        visual: &Tensor,
        text: &Tensor,
        text_mask: &Tensor,
        train: bool,
    ) -> (Tensor, Tensor) {
        let kind = text.kind();
        let text_ext = padding_mask(text_mask, kind); // [B, 1, 1, Lt]
        let n_vis = visual.size()[1];
        let mut visual = visual.shallow_clone();
        let mut text = text.shallow_clone();
        for (j, layer) in self.layers.iter().enumerate() {
            if is_connected_layer(j as i64, self.stride) {
                // visual part of the extended mask: ones → 0 (reference concatenates 4-D masks on keys)
                let b_sz = text_mask.size()[0];
                let vis_ext = Tensor::zeros([b_sz, 1, 1, n_vis], (kind, text.device()));
                let mask = Tensor::cat(&[vis_ext, text_ext.shallow_clone()], 3);
                let joint = Tensor::cat(&[&visual, &text], 1);
                let out = layer.forward(&joint, Some(&mask), None, train);
                let len = out.size()[1];
                visual = &visual + out.narrow(1, 0, n_vis);
                text = out.narrow(1, n_vis, len - n_vis);
            } else {
                // visual mask is all ones: the inverted cross mask is all zeros, so none is passed
                text = layer.forward(&text, Some(&text_ext), Some((&visual, None)), train);
            }
        }
        (visual, text)
    }
}

/// Schedule of a stack, for docs and tests: `true` where the layer is connected.
pub fn schedule(fusion_layers: i64, stride: i64) -> Vec<bool> {
    (0..fusion_layers)
        .map(|j| is_connected_layer(j, stride))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference table (§1.5): base (stride 3) connects relative layer 3 only; large (stride 6)
    /// connects none of its six layers.
    #[test]
    fn skip_rule_schedules() {
        assert_eq!(
            schedule(6, 3),
            vec![false, false, false, true, false, false]
        );
        assert_eq!(schedule(6, 6), vec![false; 6]);
        assert_eq!(schedule(2, 1), vec![false, true]);
        assert_eq!(schedule(12, 3).iter().filter(|c| **c).count(), 3); // 3, 6, 9
    }
}
