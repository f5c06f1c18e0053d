//! The CLIP ViT visual tower (`visual_encoder.visual`), as `models/clip/model.py` runs it with
//! `skip_last_layer=True`: conv patches → [CLS; patches] + positions → `ln_pre` → pre-LN residual
//! blocks (QuickGELU MLP, fused `in_proj_weight`, dropout on the attention probabilities in
//! training, 0.1 in the reference) → `ln_post` on every token. `proj` is never applied, so it is not built (known-unused key, see `weights.rs`).

use tch::Tensor;
use tch::nn::{self, Module};

use super::config::VisionConfig;
use super::layers::{LayerNorm, Linear, torch_default_linear, torch_linear_zero_bias};

/// CLIP LayerNorm epsilon.
const CLIP_LN_EPS: f64 = 1e-5;

/// x · sigmoid(1.702 x).
pub fn quick_gelu(xs: &Tensor) -> Tensor {
    xs * (xs * 1.702).sigmoid()
}

/// `nn.MultiheadAttention` with fused q/k/v rows.
#[derive(Debug)]
struct ClipAttention {
    in_proj_weight: Tensor, // [3W, W], rows q, k, v
    in_proj_bias: Tensor,   // [3W]
    out_proj: Linear,
    heads: i64,
    /// On the attention probabilities in training (`VisionConfig::dropout`).
    dropout: f64,
}

impl ClipAttention {
    /// `nn.MultiheadAttention._reset_parameters`: Xavier-uniform `in_proj_weight` (fan in W,
    /// fan out 3W), zero biases, `out_proj.weight` as a default `nn.Linear`.
    fn new(p: nn::Path, width: i64, heads: i64, dropout: f64) -> Self {
        let xavier = (6.0 / (4 * width) as f64).sqrt();
        let out_proj = torch_linear_zero_bias(&p / "out_proj", width, width);
        ClipAttention {
            in_proj_weight: p.var(
                "in_proj_weight",
                &[3 * width, width],
                nn::Init::Uniform {
                    lo: -xavier,
                    up: xavier,
                },
            ),
            in_proj_bias: p.var("in_proj_bias", &[3 * width], nn::Init::Const(0.0)),
            out_proj,
            heads,
            dropout,
        }
    }

    fn forward(&self, xs: &Tensor, train: bool) -> Tensor {
        let qkv = xs.linear(&self.in_proj_weight, Some(&self.in_proj_bias));
        let parts = qkv.chunk(3, -1);
        let out = super::attention::multi_head_attention(
            &parts[0],
            &parts[1],
            &parts[2],
            self.heads,
            None,
            self.dropout,
            train,
        );
        self.out_proj.forward(&out)
    }
}

/// One pre-LN `ResidualAttentionBlock`.
#[derive(Debug)]
struct ResidualAttentionBlock {
    attn: ClipAttention,
    ln_1: LayerNorm,
    c_fc: Linear,
    c_proj: Linear,
    ln_2: LayerNorm,
}

impl ResidualAttentionBlock {
    fn new(p: nn::Path, width: i64, heads: i64, dropout: f64) -> Self {
        let ln = |name: &str| clip_layer_norm(&p / name, width);
        ResidualAttentionBlock {
            attn: ClipAttention::new(&p / "attn", width, heads, dropout),
            ln_1: ln("ln_1"),
            c_fc: torch_default_linear(&p / "mlp" / "c_fc", width, 4 * width),
            c_proj: torch_default_linear(&p / "mlp" / "c_proj", 4 * width, width),
            ln_2: ln("ln_2"),
        }
    }

    fn forward(&self, xs: &Tensor, train: bool) -> Tensor {
        let xs = xs + self.attn.forward(&self.ln_1.forward(xs), train);
        let hidden = quick_gelu(&self.c_fc.forward(&self.ln_2.forward(&xs)));
        &xs + self.c_proj.forward(&hidden)
    }
}

fn clip_layer_norm(p: nn::Path, width: i64) -> LayerNorm {
    LayerNorm::new(p, width, CLIP_LN_EPS)
}

/// `visual_encoder.visual`.
#[derive(Debug)]
pub struct VisionTransformer {
    conv1: Tensor, // [W, 3, p, p], no bias
    class_embedding: Tensor,
    positional_embedding: Tensor, // [N+1, W]
    ln_pre: LayerNorm,
    resblocks: Vec<ResidualAttentionBlock>,
    ln_post: LayerNorm,
    patch_size: i64,
}

impl VisionTransformer {
    /// Builds the tower under `p` (normally `visual_encoder / visual`), initialised as CLIP's
    /// `VisionTransformer.__init__` does (`initialize_parameters` leaves a ViT tower alone):
    /// `scale · randn` class and positional embeddings with scale = W^-½, PyTorch defaults for the
    /// convolution and the blocks. Only a from-scratch run sees this; checkpoints overwrite it.
    pub fn new(p: nn::Path, cfg: &VisionConfig) -> Self {
        let w = cfg.width;
        let scaled = nn::Init::Randn {
            mean: 0.0,
            stdev: (w as f64).powf(-0.5),
        };
        let conv_bound = 1.0 / ((3 * cfg.patch_size * cfg.patch_size) as f64).sqrt();
        let conv_init = nn::Init::Uniform {
            lo: -conv_bound,
            up: conv_bound,
        };
        let ps = cfg.patch_size;
        let blocks = &p / "transformer" / "resblocks";
        VisionTransformer {
            conv1: (&p / "conv1").var("weight", &[w, 3, ps, ps], conv_init),
            class_embedding: p.var("class_embedding", &[w], scaled),
            positional_embedding: p.var("positional_embedding", &[cfg.num_positions(), w], scaled),
            ln_pre: clip_layer_norm(&p / "ln_pre", w),
            resblocks: (0..cfg.layers)
                .map(|i| ResidualAttentionBlock::new(&blocks / i, w, cfg.heads, cfg.dropout))
                .collect(),
            ln_post: clip_layer_norm(&p / "ln_post", w),
            patch_size: cfg.patch_size,
        }
    }

    /// `[B, 3, R, R]` normalised images → `[B, N+1, W]` (CLS first, patches row-major).
    pub fn forward(&self, image: &Tensor, train: bool) -> Tensor {
        let xs = image.to_kind(self.conv1.kind()).conv2d(
            &self.conv1,
            None::<Tensor>,
            [self.patch_size, self.patch_size],
            [0, 0],
            [1, 1],
            1,
        ); // [B, W, g, g]
        let (b_sz, width, _, _) = xs.size4().expect("conv output is 4-D");
        let xs = xs.reshape([b_sz, width, -1]).transpose(1, 2); // [B, N, W]
        let cls = self
            .class_embedding
            .to_kind(xs.kind())
            .reshape([1, 1, width])
            .expand([b_sz, 1, width], false);
        let xs = Tensor::cat(&[cls, xs], 1);
        let n = xs.size()[1];
        // slicing allowed: a longer table is truncated (reference §1.2 step 3)
        let xs = &xs + self.positional_embedding.narrow(0, 0, n).to_kind(xs.kind());
        let mut xs = self.ln_pre.forward(&xs);
        for block in &self.resblocks {
            xs = block.forward(&xs, train);
        }
        self.ln_post.forward(&xs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_gelu_matches_formula() {
        // x·σ(1.702x) by hand: σ(1.702) = 1/(1 + e^-1.702) = 1/1.182319 = 0.845795…
        let xs = Tensor::from_slice(&[1.0f64, -1.0, 0.0, 2.0]);
        let got = Vec::<f64>::try_from(quick_gelu(&xs)).unwrap();
        let sig = |z: f64| 1.0 / (1.0 + (-z).exp());
        let want = [sig(1.702), -sig(-1.702), 0.0, 2.0 * sig(3.404)];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-12);
        }
        assert!((got[0] - 0.845_795).abs() < 1e-5);
    }
}
