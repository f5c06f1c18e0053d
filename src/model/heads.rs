//! Output heads: BERT's LM prediction head (decoder LM and MLM), the ITC projections and the ITM head.

use tch::Tensor;
use tch::nn::{self, Module};

use super::config::BertConfig;
use super::layers::{LayerNorm, Linear, normal_linear, torch_default_linear};

/// `cls.predictions`: dense → GELU → LayerNorm → linear to the vocabulary (+ own `bias`).
#[derive(Debug)]
pub struct LmPredictionHead {
    dense: Linear,
    layer_norm: LayerNorm,
    /// [V, H]; tied to the word embeddings in the decoder, its own `decoder.weight` for MLM.
    decoder_weight: Tensor,
    bias: Tensor,
}

impl LmPredictionHead {
    /// Builds under `p` (`… / "cls" / "predictions"`). With `tied`, the output matrix is that tensor
    /// (the decoder's word embeddings: HF `tie_weights`); otherwise `decoder.weight` is a parameter.
    pub fn new(p: nn::Path, cfg: &BertConfig, tied: Option<&Tensor>) -> Self {
        let h = cfg.hidden_size;
        let decoder_weight = match tied {
            Some(t) => t.shallow_clone(),
            None => (&p / "decoder").var(
                "weight",
                &[cfg.vocab_size, h],
                nn::Init::Randn {
                    mean: 0.0,
                    stdev: cfg.initializer_range,
                },
            ),
        };
        LmPredictionHead {
            dense: normal_linear(&p / "transform" / "dense", h, h, cfg.initializer_range),
            layer_norm: LayerNorm::new(&p / "transform" / "LayerNorm", h, cfg.layer_norm_eps),
            decoder_weight,
            bias: p.var("bias", &[cfg.vocab_size], nn::Init::Const(0.0)),
        }
    }

    /// `[…, H]` → logits `[…, V]`.
    pub fn forward(&self, xs: &Tensor) -> Tensor {
        let hidden = self
            .layer_norm
            .forward(&self.dense.forward(xs).gelu("none"));
        hidden.linear(&self.decoder_weight, Some(&self.bias))
    }
}

/// The retrieval/pretraining heads: `vision_proj`, `text_proj` (→ `embed_dim`, L2-normalised),
/// `itm_head` (→ 2) and the learnable temperature `temp`.
#[derive(Debug)]
pub struct ContrastiveHeads {
    vision_proj: Linear,
    text_proj: Linear,
    itm_head: Linear,
    /// ITC temperature (init 0.07; never clamped, reference §2.1 QUIRK).
    pub temp: Tensor,
}

impl ContrastiveHeads {
    /// Builds at the model root.
    pub fn new(root: &nn::Path, hidden: i64, embed_dim: i64, temp: f64) -> Self {
        ContrastiveHeads {
            vision_proj: torch_default_linear(root / "vision_proj", hidden, embed_dim),
            text_proj: torch_default_linear(root / "text_proj", hidden, embed_dim),
            itm_head: torch_default_linear(root / "itm_head", hidden, 2),
            temp: root.var("temp", &[], nn::Init::Const(temp)),
        }
    }

    /// `vision_proj` of visual CLS tokens `[.., H]` → `[.., D]`, not normalised (video retrieval
    /// averages it over frames first).
    pub fn vision_projection(&self, visual_cls: &Tensor) -> Tensor {
        self.vision_proj.forward(visual_cls)
    }

    /// Normalised ITC image feature from the visual CLS `[B, H]` → `[B, D]`.
    pub fn image_feat(&self, visual_cls: &Tensor) -> Tensor {
        l2_normalize(&self.vision_proj.forward(visual_cls))
    }

    /// Normalised ITC text feature from the text-encoder CLS `[B, H]` → `[B, D]`.
    pub fn text_feat(&self, text_cls: &Tensor) -> Tensor {
        l2_normalize(&self.text_proj.forward(text_cls))
    }

    /// ITM logits from the fused text CLS `[B, H]` → `[B, 2]`.
    pub fn itm_logits(&self, fused_cls: &Tensor) -> Tensor {
        self.itm_head.forward(fused_cls)
    }
}

/// `F.normalize(x, dim=-1)`: x / max(‖x‖₂, 1e-12).
pub fn l2_normalize(xs: &Tensor) -> Tensor {
    let norm = xs.norm_scalaropt_dim(2, [-1], true).clamp_min(1e-12);
    xs / norm
}

/// A classification head as ALBEF's task models build it (`cls_head = Sequential(Linear(H, H), ReLU,
/// Linear(H, classes))`, keys `cls_head.0.*` and `cls_head.2.*`) on the fused text CLS. mPLUG
/// released no SNLI-VE/NLVR2 model; this is the design its paper's numbers imply (ALBEF's heads).
#[derive(Debug)]
pub struct ClassifierHead {
    dense: Linear,
    out: Linear,
}

impl ClassifierHead {
    /// Builds under `p` (`cls_head`) with PyTorch's `nn.Linear` initialisation: `inputs` fused CLS
    /// vectors of width `hidden` concatenated (2 for an NLVR2 pair) → `hidden` → `classes`.
    pub fn new(p: nn::Path, inputs: i64, hidden: i64, classes: i64) -> Self {
        ClassifierHead {
            dense: torch_default_linear(&p / "0", inputs * hidden, hidden),
            out: torch_default_linear(&p / "2", hidden, classes),
        }
    }

    /// Logits `[B, classes]` from the fused text CLS `[B, inputs·H]`.
    pub fn forward(&self, cls: &Tensor) -> Tensor {
        self.out.forward(&self.dense.forward(cls).relu())
    }
}
