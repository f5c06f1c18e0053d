//! AdamW as `torch.optim.AdamW` computes it (decoupled decay, bias corrections, eps outside the
//! square root), over the reference's four parameter groups (`create_two_optimizer`), and global
//! gradient-norm clipping as `clip_grad_norm_`.
//!
//! Written here rather than using `tch::nn::Optimizer` because its state (moments, step counts)
//! is not reachable from Rust, and exact resume needs to save and restore it.

use std::collections::BTreeMap;

use tch::{Kind, Tensor};

use crate::error::{Error, Result};

/// The reference's group of a parameter name (§2.8): visual or not × decay or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ParamGroup {
    /// Non-visual, decayed (lr1, weight_decay).
    Decay,
    /// Non-visual, `bias` / `LayerNorm.weight` (lr1, no decay).
    NoDecay,
    /// `visual_encoder`, decayed (lr2).
    VisualDecay,
    /// `visual_encoder`, `bias` / `LayerNorm.weight` (lr2, no decay).
    VisualNoDecay,
}

impl ParamGroup {
    /// The group of a state-dict name. CLIP LayerNorms are `ln_*` and so decay, as in the
    /// reference; so do `temp`, `class_embedding` and `positional_embedding`.
    pub fn of(name: &str) -> Self {
        let no_decay = name.contains("bias") || name.contains("LayerNorm.weight");
        match (name.contains("visual_encoder"), no_decay) {
            (false, false) => ParamGroup::Decay,
            (false, true) => ParamGroup::NoDecay,
            (true, false) => ParamGroup::VisualDecay,
            (true, true) => ParamGroup::VisualNoDecay,
        }
    }

    /// Whether the visual learning rate applies.
    pub fn visual(self) -> bool {
        matches!(self, ParamGroup::VisualDecay | ParamGroup::VisualNoDecay)
    }

    /// Whether weight decay applies.
    pub fn decays(self) -> bool {
        matches!(self, ParamGroup::Decay | ParamGroup::VisualDecay)
    }
}

/// One parameter with its moments.
#[derive(Debug)]
struct Slot {
    param: Tensor,
    group: ParamGroup,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    /// Steps this parameter took (torch keeps one per parameter: a parameter without a gradient
    /// is skipped and does not count).
    step: i64,
}

/// AdamW over named parameters.
#[derive(Debug)]
pub struct AdamW {
    slots: BTreeMap<String, Slot>,
    /// (beta1, beta2).
    pub betas: (f64, f64),
    /// Added to the bias-corrected root of the second moment.
    pub eps: f64,
    /// Decoupled decay of the decay groups.
    pub weight_decay: f64,
}

impl AdamW {
    /// Over `params` (name, tensor requiring grad), torch's defaults betas (0.9, 0.999), eps 1e-8.
    pub fn new(params: Vec<(String, Tensor)>, weight_decay: f64) -> Self {
        let slots = params
            .into_iter()
            .map(|(name, param)| {
                let group = ParamGroup::of(&name);
                let exp_avg = param.zeros_like().detach();
                let exp_avg_sq = param.zeros_like().detach();
                let slot = Slot {
                    param,
                    group,
                    exp_avg,
                    exp_avg_sq,
                    step: 0,
                };
                (name, slot)
            })
            .collect();
        AdamW {
            slots,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay,
        }
    }

    /// Sets every gradient to zero (drops them).
    pub fn zero_grad(&mut self) {
        for s in self.slots.values_mut() {
            let mut g = s.param.grad();
            if g.defined() {
                let _ = g.detach_();
                let _ = g.zero_();
            }
        }
    }

    /// `clip_grad_norm_(params, max_norm)`: scales every gradient by max_norm / (norm + 1e-6) when
    /// that is below 1. Returns the total L2 norm before clipping.
    pub fn clip_grad_norm(&mut self, max_norm: f64) -> f64 {
        let _guard = tch::no_grad_guard();
        let norms: Vec<Tensor> = self
            .slots
            .values()
            .map(|s| s.param.grad())
            .filter(|g| g.defined())
            .map(|g| g.to_kind(Kind::Float).norm().square())
            .collect();
        if norms.is_empty() {
            return 0.0;
        }
        let total = Tensor::stack(&norms, 0).sum(Kind::Float).sqrt();
        let total_f = total.double_value(&[]);
        let coef = (max_norm / (total_f + 1e-6)).min(1.0);
        if coef < 1.0 {
            for s in self.slots.values() {
                let mut g = s.param.grad();
                if g.defined() {
                    let _ = g.g_mul_scalar_(coef);
                }
            }
        }
        total_f
    }

    /// One step with learning rate `lr1` (non-visual groups) and `lr2` (visual groups).
    pub fn step(&mut self, lr1: f64, lr2: f64) {
        let _guard = tch::no_grad_guard();
        let (b1, b2) = self.betas;
        for s in self.slots.values_mut() {
            let grad = s.param.grad();
            if !grad.defined() {
                continue;
            }
            s.step += 1;
            let lr = if s.group.visual() { lr2 } else { lr1 };
            let wd = if s.group.decays() {
                self.weight_decay
            } else {
                0.0
            };
            let p = &mut s.param;
            if wd != 0.0 {
                let _ = p.g_mul_scalar_(1.0 - lr * wd);
            }
            // exp_avg.lerp_(grad, 1 - b1); exp_avg_sq.mul_(b2).addcmul_(grad, grad, 1 - b2)
            let _ = s.exp_avg.lerp_(&grad, 1.0 - b1);
            let _ = s.exp_avg_sq.g_mul_scalar_(b2);
            let _ = s.exp_avg_sq.addcmul_(&(&grad * (1.0 - b2)), &grad);
            let bc1 = 1.0 - b1.powi(s.step as i32);
            let bc2 = 1.0 - b2.powi(s.step as i32);
            let step_size = lr / bc1;
            let denom = s.exp_avg_sq.sqrt() / bc2.sqrt() + self.eps;
            let _ = p.addcdiv_(&(&s.exp_avg * (-step_size)), &denom);
        }
    }

    /// The state as named tensors (`<name>.exp_avg`, `<name>.exp_avg_sq`, `<name>.step`).
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(self.slots.len() * 3);
        for (name, s) in &self.slots {
            out.push((format!("{name}.exp_avg"), s.exp_avg.shallow_clone()));
            out.push((format!("{name}.exp_avg_sq"), s.exp_avg_sq.shallow_clone()));
            out.push((format!("{name}.step"), Tensor::from_slice(&[s.step])));
        }
        out
    }

    /// Restores [`AdamW::state_tensors`]; every parameter must be present with its shape.
    pub fn load_state(&mut self, tensors: &[(String, Tensor)]) -> Result<()> {
        let map: BTreeMap<&str, &Tensor> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
        let _guard = tch::no_grad_guard();
        for (name, s) in self.slots.iter_mut() {
            let get = |suffix: &str| {
                map.get(format!("{name}.{suffix}").as_str())
                    .copied()
                    .ok_or_else(|| {
                        Error::format(format!("optimizer state lacks `{name}.{suffix}`"))
                    })
            };
            let (m, v, step) = (get("exp_avg")?, get("exp_avg_sq")?, get("step")?);
            if m.size() != s.exp_avg.size() || v.size() != s.exp_avg_sq.size() {
                return Err(Error::format(format!(
                    "optimizer state of `{name}` has another shape"
                )));
            }
            s.exp_avg.copy_(m);
            s.exp_avg_sq.copy_(v);
            s.step = step.int64_value(&[0]);
        }
        Ok(())
    }

    /// Parameters per group (for the log).
    pub fn group_sizes(&self) -> BTreeMap<ParamGroup, usize> {
        let mut out = BTreeMap::new();
        for s in self.slots.values() {
            *out.entry(s.group).or_default() += s.param.numel();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_follow_create_two_optimizer() {
        assert_eq!(
            ParamGroup::of("text_encoder.encoder.layer.0.attention.self.query.weight"),
            ParamGroup::Decay
        );
        assert_eq!(
            ParamGroup::of("text_encoder.encoder.layer.0.output.LayerNorm.weight"),
            ParamGroup::NoDecay
        );
        assert_eq!(ParamGroup::of("itm_head.bias"), ParamGroup::NoDecay);
        assert_eq!(ParamGroup::of("temp"), ParamGroup::Decay);
        // CLIP LayerNorms are `ln_*`: decayed, as in the reference.
        assert_eq!(
            ParamGroup::of("visual_encoder.visual.ln_pre.weight"),
            ParamGroup::VisualDecay
        );
        assert_eq!(
            ParamGroup::of("visual_encoder.visual.ln_pre.bias"),
            ParamGroup::VisualNoDecay
        );
        assert_eq!(ParamGroup::of("visn_layer_norm.weight"), ParamGroup::Decay);
    }

    /// Two steps on a 3-vector against the AdamW formulas evaluated by hand in f64.
    #[test]
    fn two_steps_equal_the_hand_computed_update() {
        let p = Tensor::from_slice(&[1.0f64, -2.0, 0.5]).set_requires_grad(true);
        let mut opt = AdamW::new(vec![("w".into(), p.shallow_clone())], 0.1);
        let (lr, b1, b2, eps, wd) = (0.01f64, 0.9f64, 0.999f64, 1e-8f64, 0.1f64);
        let mut x = [1.0f64, -2.0, 0.5];
        let (mut m, mut v) = ([0.0f64; 3], [0.0f64; 3]);
        for t in 1..=2 {
            // loss = sum(p^3) → grad 3 p^2
            opt.zero_grad();
            let loss = p.pow_tensor_scalar(3).sum(Kind::Double);
            loss.backward();
            opt.step(lr, 0.0);
            for i in 0..3 {
                let g = 3.0 * x[i] * x[i];
                x[i] *= 1.0 - lr * wd;
                m[i] = b1 * m[i] + (1.0 - b1) * g;
                v[i] = b2 * v[i] + (1.0 - b2) * g * g;
                let mhat = m[i] / (1.0 - b1.powi(t));
                let denom = (v[i] / (1.0 - b2.powi(t))).sqrt() + eps;
                x[i] -= lr * mhat / denom;
            }
            let got: Vec<f64> = Vec::<f64>::try_from(p.detach()).unwrap();
            for i in 0..3 {
                assert!((got[i] - x[i]).abs() < 1e-12, "step {t}: {got:?} vs {x:?}");
            }
        }
    }

    #[test]
    fn clipping_scales_to_the_max_norm_and_reports_the_norm() {
        let p = Tensor::from_slice(&[0.0f32, 0.0]).set_requires_grad(true);
        let mut opt = AdamW::new(vec![("w".into(), p.shallow_clone())], 0.0);
        // grad = (3, 4): norm 5
        (&p * Tensor::from_slice(&[3.0f32, 4.0]))
            .sum(Kind::Float)
            .backward();
        let n = opt.clip_grad_norm(1.0);
        assert!((n - 5.0).abs() < 1e-6);
        let g: Vec<f32> = Vec::<f32>::try_from(p.grad()).unwrap();
        let want = 1.0 / (5.0 + 1e-6);
        assert!((g[0] as f64 - 3.0 * want).abs() < 1e-6 && (g[1] as f64 - 4.0 * want).abs() < 1e-6);
    }
}
