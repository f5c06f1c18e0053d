//! Small building blocks shared by the towers: initialised linears, layer norms, embeddings.

use tch::nn::{self, Module};
use tch::{Kind, Tensor};

/// A PyTorch `nn.Linear` (`weight` [out, in], `bias` [out]).
pub type Linear = nn::Linear;

/// A linear with BERT's initialisation: N(0, `std`) weights (`initializer_range`), zero bias.
pub fn normal_linear(p: nn::Path, in_dim: i64, out_dim: i64, std: f64) -> Linear {
    nn::linear(
        p,
        in_dim,
        out_dim,
        nn::LinearConfig {
            ws_init: nn::Init::Randn {
                mean: 0.0,
                stdev: std,
            },
            bs_init: Some(nn::Init::Const(0.0)),
            bias: true,
        },
    )
}

/// A linear with PyTorch's default `nn.Linear` initialisation: weight and bias uniform in
/// ±1/√in (`kaiming_uniform_(a=√5)`). The modules the reference creates as plain `nn.Linear`
/// outside any BERT model (ITC projections, ITM head, the large model's `visn_fc`, CLIP's MLP)
/// keep it, and its scale follows the width where a fixed σ = 0.02 does not.
pub fn torch_default_linear(p: nn::Path, in_dim: i64, out_dim: i64) -> Linear {
    uniform_linear(p, in_dim, out_dim, fan_in_uniform(in_dim))
}

/// [`torch_default_linear`]'s weight with a zero bias, as `nn.MultiheadAttention` resets its
/// `out_proj`.
pub fn torch_linear_zero_bias(p: nn::Path, in_dim: i64, out_dim: i64) -> Linear {
    uniform_linear(p, in_dim, out_dim, nn::Init::Const(0.0))
}

/// U(±1/√in).
fn fan_in_uniform(in_dim: i64) -> nn::Init {
    let bound = 1.0 / (in_dim as f64).sqrt();
    nn::Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

fn uniform_linear(p: nn::Path, in_dim: i64, out_dim: i64, bias: nn::Init) -> Linear {
    nn::linear(
        p,
        in_dim,
        out_dim,
        nn::LinearConfig {
            ws_init: fan_in_uniform(in_dim),
            bs_init: Some(bias),
            bias: true,
        },
    )
}

/// `nn.LayerNorm` over the last dimension (`weight`, `bias`). Computed in fp32 and cast back when the
/// input is half precision, as CLIP's `LayerNorm` subclass does; fp32 inputs are unchanged by this.
#[derive(Debug)]
pub struct LayerNorm {
    /// Scale [D].
    pub weight: Tensor,
    /// Shift [D].
    pub bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    /// Builds `weight` = 1, `bias` = 0 under `p`.
    pub fn new(p: nn::Path, dim: i64, eps: f64) -> Self {
        LayerNorm {
            weight: p.var("weight", &[dim], nn::Init::Const(1.0)),
            bias: p.var("bias", &[dim], nn::Init::Const(0.0)),
            eps,
        }
    }
}

impl Module for LayerNorm {
    fn forward(&self, xs: &Tensor) -> Tensor {
        let kind = xs.kind();
        let dim = self.weight.size();
        if kind == Kind::Float || kind == Kind::Double {
            return xs.layer_norm(
                &dim,
                Some(&self.weight.to_kind(kind)),
                Some(&self.bias.to_kind(kind)),
                self.eps,
                false,
            );
        }
        let (w, b) = (
            self.weight.to_kind(Kind::Float),
            self.bias.to_kind(Kind::Float),
        );
        xs.to_kind(Kind::Float)
            .layer_norm(&dim, Some(&w), Some(&b), self.eps, false)
            .to_kind(kind)
    }
}

/// `nn.Embedding` (`weight` [N, D], N(0, σ) init with BERT's `initializer_range`).
#[derive(Debug)]
pub struct Embedding {
    /// The table [N, D].
    pub weight: Tensor,
}

impl Embedding {
    /// Builds the table under `p`.
    pub fn new(p: nn::Path, n: i64, dim: i64, std: f64) -> Self {
        let init = nn::Init::Randn {
            mean: 0.0,
            stdev: std,
        };
        Embedding {
            weight: p.var("weight", &[n, dim], init),
        }
    }
}

impl Module for Embedding {
    fn forward(&self, ids: &Tensor) -> Tensor {
        Tensor::embedding(&self.weight, ids, -1, false, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// LayerNorm of [1, 2, 3, 4] with unit weight and zero bias, by hand:
    /// mean 2.5, biased variance 1.25 → (x − 2.5)/√(1.25 + eps).
    #[test]
    fn layer_norm_by_hand() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let ln = LayerNorm::new(vs.root() / "LayerNorm", 4, 1e-12);
        let xs = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]);
        let got = Vec::<f32>::try_from(ln.forward(&xs)).unwrap();
        let s = 1.25f64.sqrt();
        for (g, x) in got.iter().zip([1.0, 2.0, 3.0, 4.0]) {
            assert!((*g as f64 - (x - 2.5) / s).abs() < 1e-6);
        }
        let bf = ln.forward(&xs.to_kind(Kind::BFloat16));
        assert_eq!(bf.kind(), Kind::BFloat16);
        let names: Vec<String> = vs.variables().into_keys().collect();
        assert!(names.contains(&"LayerNorm.weight".to_string()));
    }
}
