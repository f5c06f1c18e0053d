//! AdamW as `torch.optim.AdamW` computes it (decoupled decay, bias corrections, eps outside the
//! square root), over the reference's four parameter groups (`create_two_optimizer`), and global
//! gradient-norm clipping as `clip_grad_norm_`.
//!
//! Written here rather than using `tch::nn::Optimizer` because its state (moments, step counts)
//! is not reachable from Rust, and exact resume needs to save and restore it.
//!
//! The parameters of a group (and dtype, device) live in one flat buffer, each a view of it, with
//! flat moments; once every member has a gradient, the gradients are made views of a flat
//! gradient buffer too (autograd then accumulates into it in place). Zeroing, the norm, the clip
//! scale and the AdamW update are then a few kernels per bucket instead of ~10 per tensor — the
//! per-tensor launch overhead that held the GPU step back (issue 20). Parameters that get no
//! gradient (another task's heads) are split into a bucket of their own and skipped, as torch skips
//! a parameter whose `grad` is None. Per element the arithmetic is the per-tensor one
//! ([`AdamW::per_tensor`]); without clipping the result is bit-identical.

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

/// One parameter with its moments (views into its bucket's flat buffers).
#[derive(Debug)]
struct Slot {
    param: Tensor,
    group: ParamGroup,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    /// Steps this parameter took (torch keeps one per parameter: a parameter without a gradient
    /// is skipped and does not count).
    step: i64,
    /// Its place in its bucket's buffers.
    offset: i64,
}

/// The parameters of one group, dtype and device in one flat buffer (every parameter a view), with
/// flat moments and — once every member has a gradient — a flat gradient buffer the gradients are
/// views of. AdamW, clipping and zeroing then take a handful of kernels per bucket instead of
/// several per tensor (issue 20); the arithmetic per element is the per-tensor one.
#[derive(Debug)]
struct Bucket {
    group: ParamGroup,
    params: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    grads: Option<Tensor>,
    members: Vec<String>,
}

/// AdamW over named parameters.
#[derive(Debug)]
pub struct AdamW {
    slots: BTreeMap<String, Slot>,
    buckets: Vec<Bucket>,
    /// (beta1, beta2).
    pub betas: (f64, f64),
    /// Added to the bias-corrected root of the second moment.
    pub eps: f64,
    /// Decoupled decay of the decay groups.
    pub weight_decay: f64,
}

impl AdamW {
    /// Over `params` (name, tensor requiring grad), torch's defaults betas (0.9, 0.999), eps 1e-8.
    /// Each parameter's storage moves into its bucket's flat buffer (values unchanged; the
    /// `VarStore` sees the same tensors).
    pub fn new(params: Vec<(String, Tensor)>, weight_decay: f64) -> Self {
        Self::with_buckets(params, weight_decay, false)
    }

    /// The same optimiser with one bucket per parameter: the per-tensor kernels of the flat
    /// buckets' arithmetic (the step before buckets existed), for comparisons and benchmarks.
    pub fn per_tensor(params: Vec<(String, Tensor)>, weight_decay: f64) -> Self {
        Self::with_buckets(params, weight_decay, true)
    }

    fn with_buckets(params: Vec<(String, Tensor)>, weight_decay: f64, per_tensor: bool) -> Self {
        let _guard = tch::no_grad_guard();
        let params: BTreeMap<String, Tensor> = params.into_iter().collect();
        let mut keys: BTreeMap<(ParamGroup, String, String, String), Vec<String>> = BTreeMap::new();
        for (name, p) in &params {
            let key = (
                ParamGroup::of(name),
                format!("{:?}", p.kind()),
                format!("{:?}", p.device()),
                if per_tensor {
                    name.clone()
                } else {
                    String::new()
                },
            );
            keys.entry(key).or_default().push(name.clone());
        }
        let mut slots = BTreeMap::new();
        let mut buckets = Vec::with_capacity(keys.len());
        for ((group, _, _, _), members) in keys {
            let flat: Vec<Tensor> = members
                .iter()
                .map(|n| params[n].detach().reshape([-1]))
                .collect();
            let flat = Tensor::cat(&flat, 0);
            let exp_avg = flat.zeros_like();
            let exp_avg_sq = flat.zeros_like();
            let mut offset = 0;
            for name in &members {
                let mut param = params[name].shallow_clone();
                let (n, size) = (param.numel() as i64, param.size());
                let view = |t: &Tensor| t.narrow(0, offset, n).view(size.as_slice());
                param.set_data(&view(&flat));
                slots.insert(
                    name.clone(),
                    Slot {
                        param,
                        group,
                        exp_avg: view(&exp_avg),
                        exp_avg_sq: view(&exp_avg_sq),
                        step: 0,
                        offset,
                    },
                );
                offset += n;
            }
            buckets.push(Bucket {
                group,
                params: flat,
                exp_avg,
                exp_avg_sq,
                grads: None,
                members,
            });
        }
        AdamW {
            slots,
            buckets,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay,
        }
    }

    /// Whether bucket `b`'s gradients are (still) views of its flat gradient buffer; makes them so
    /// when every member has a gradient. Autograd accumulates into an existing gradient in place,
    /// so once placed they stay; a gradient that was replaced is copied back in.
    fn flat_grads(&mut self, b: usize) -> bool {
        let _guard = tch::no_grad_guard();
        let bucket = &self.buckets[b];
        let grads: Vec<Tensor> = bucket
            .members
            .iter()
            .map(|n| self.slots[n].param.grad())
            .collect();
        let with: Vec<String> = bucket
            .members
            .iter()
            .zip(&grads)
            .filter(|(_, g)| g.defined())
            .map(|(n, _)| n.clone())
            .collect();
        if with.len() < grads.len() {
            if with.is_empty() || bucket.grads.is_some() {
                return false;
            }
            // Parameters the task never trains (heads of other tasks) must keep torch's "no
            // gradient, no update": they move to a bucket of their own.
            let without = bucket
                .members
                .iter()
                .filter(|n| !with.contains(n))
                .cloned()
                .collect();
            self.rebucket(b, with, without);
            return self.flat_grads(b);
        }
        let flat = match &bucket.grads {
            Some(flat) => flat.shallow_clone(),
            None => bucket.params.zeros_like(),
        };
        let base = flat.data_ptr() as usize;
        let elem = flat.kind().elt_size_in_bytes();
        for (name, mut g) in bucket.members.iter().zip(grads) {
            let s = &self.slots[name];
            if g.data_ptr() as usize == base + s.offset as usize * elem && g.is_contiguous() {
                continue;
            }
            let mut view = flat
                .narrow(0, s.offset, s.param.numel() as i64)
                .view(s.param.size().as_slice());
            view.copy_(&g);
            g.set_data(&view);
        }
        self.buckets[b].grads = Some(flat);
        true
    }

    /// Splits bucket `b` into `first` (stays at `b`) and `second` (a new bucket), each with its own
    /// flat buffers holding the members' current values and moments.
    fn rebucket(&mut self, b: usize, first: Vec<String>, second: Vec<String>) {
        let _guard = tch::no_grad_guard();
        let group = self.buckets[b].group;
        let mut parts = Vec::with_capacity(2);
        for members in [first, second] {
            let gather = |f: &dyn Fn(&Slot) -> Tensor| {
                let parts: Vec<Tensor> = members
                    .iter()
                    .map(|n| f(&self.slots[n]).detach().reshape([-1]))
                    .collect();
                Tensor::cat(&parts, 0)
            };
            let params = gather(&|s| s.param.shallow_clone());
            let exp_avg = gather(&|s| s.exp_avg.shallow_clone());
            let exp_avg_sq = gather(&|s| s.exp_avg_sq.shallow_clone());
            let mut offset = 0;
            for name in &members {
                let Some(s) = self.slots.get_mut(name) else {
                    continue;
                };
                let (n, size) = (s.param.numel() as i64, s.param.size());
                let view = |t: &Tensor| t.narrow(0, offset, n).view(size.as_slice());
                s.param.set_data(&view(&params));
                s.exp_avg = view(&exp_avg);
                s.exp_avg_sq = view(&exp_avg_sq);
                s.offset = offset;
                offset += n;
            }
            parts.push(Bucket {
                group,
                params,
                exp_avg,
                exp_avg_sq,
                grads: None,
                members,
            });
        }
        let second = parts.pop();
        if let Some(first) = parts.pop() {
            self.buckets[b] = first;
        }
        self.buckets.extend(second);
    }

    /// The gradients as stored, bucket by bucket: a bucket's flat gradient buffer when its
    /// gradients are views of it, else each member's defined gradient. Zeroing, the norm,
    /// clipping and the all-reduce all run over these.
    fn gradient_tensors(&mut self) -> Vec<Tensor> {
        let mut out = Vec::new();
        for b in 0..self.buckets.len() {
            if self.flat_grads(b) {
                out.extend(self.buckets[b].grads.iter().map(Tensor::shallow_clone));
                continue;
            }
            out.extend(
                self.buckets[b]
                    .members
                    .iter()
                    .map(|n| self.slots[n].param.grad())
                    .filter(|g| g.defined()),
            );
        }
        out
    }

    /// Sets every gradient to zero.
    pub fn zero_grad(&mut self) {
        let _guard = tch::no_grad_guard();
        for mut g in self.gradient_tensors() {
            let _ = g.detach_();
            let _ = g.zero_();
        }
    }

    /// Data parallelism: every gradient becomes its mean over the group's ranks (DDP's
    /// all-reduce, then ÷ world), one collective per flat bucket. Ranks must hold gradients for
    /// the same parameters (they run the same task on the same model).
    pub fn average_gradients(&mut self, group: &dyn super::dist::Collective) -> Result<()> {
        if group.is_single_process() {
            return Ok(());
        }
        let _guard = tch::no_grad_guard();
        for mut g in self.gradient_tensors() {
            group.all_reduce_sum(&mut g)?;
            let _ = g.g_div_scalar_(group.world() as f64);
        }
        Ok(())
    }

    /// `clip_grad_norm_(params, max_norm)`: scales every gradient by max_norm / (norm + 1e-6) when
    /// that is below 1. Returns the total L2 norm before clipping (read from the device: see
    /// [`Self::clip_grad_norm_on_device`] for the step that reads nothing).
    pub fn clip_grad_norm(&mut self, max_norm: f64) -> f64 {
        self.clip_grad_norm_on_device(max_norm).double_value(&[])
    }

    /// [`Self::clip_grad_norm`] without reading anything on the host, as torch's: the coefficient
    /// `min(max_norm / (norm + 1e-6), 1)` stays a device scalar and every gradient is multiplied
    /// by it (by exactly 1 when there is nothing to clip). Returns the norm, on the device.
    pub fn clip_grad_norm_on_device(&mut self, max_norm: f64) -> Tensor {
        let _guard = tch::no_grad_guard();
        let grads = self.gradient_tensors();
        if grads.is_empty() {
            let device = self
                .buckets
                .first()
                .map_or(tch::Device::Cpu, |b| b.params.device());
            return Tensor::zeros([], (Kind::Float, device));
        }
        let norms: Vec<Tensor> = grads
            .iter()
            .map(|g| g.to_kind(Kind::Float).norm().square())
            .collect();
        let total = Tensor::stack(&norms, 0).sum(Kind::Float).sqrt();
        if max_norm.is_infinite() {
            return total;
        }
        let coef = ((&total + 1e-6).reciprocal() * max_norm).clamp_max(1.0);
        for mut g in grads {
            let _ = g.g_mul_(&coef.to_kind(g.kind()));
        }
        total
    }

    /// One step with learning rate `lr1` (non-visual groups) and `lr2` (visual groups).
    pub fn step(&mut self, lr1: f64, lr2: f64) {
        let _guard = tch::no_grad_guard();
        let (b1, b2, eps) = (self.betas.0, self.betas.1, self.eps);
        for b in 0..self.buckets.len() {
            let group = self.buckets[b].group;
            let lr = if group.visual() { lr2 } else { lr1 };
            let wd = if group.decays() {
                self.weight_decay
            } else {
                0.0
            };
            let members = &self.buckets[b].members;
            let step = self.slots[&members[0]].step;
            let same_step = members.iter().all(|n| self.slots[n].step == step);
            if same_step && self.flat_grads(b) {
                let bucket = &mut self.buckets[b];
                let Some(grad) = &bucket.grads else { continue };
                adamw_update(
                    &mut bucket.params,
                    grad,
                    &mut bucket.exp_avg,
                    &mut bucket.exp_avg_sq,
                    step + 1,
                    (lr, wd, b1, b2, eps),
                );
                for n in &bucket.members {
                    if let Some(s) = self.slots.get_mut(n) {
                        s.step += 1;
                    }
                }
                continue;
            }
            for name in self.buckets[b].members.clone() {
                let Some(s) = self.slots.get_mut(&name) else {
                    continue;
                };
                let grad = s.param.grad();
                if !grad.defined() {
                    continue;
                }
                s.step += 1;
                adamw_update(
                    &mut s.param,
                    &grad,
                    &mut s.exp_avg,
                    &mut s.exp_avg_sq,
                    s.step,
                    (lr, wd, b1, b2, eps),
                );
            }
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

    /// Buckets: how many, how many hold their gradients in one flat buffer now, and how many have
    /// no member with a gradient.
    pub fn flat_buckets(&self) -> (usize, usize, usize) {
        let flat = self.buckets.iter().filter(|b| b.grads.is_some()).count();
        let idle = self
            .buckets
            .iter()
            .filter(|b| {
                b.members
                    .iter()
                    .all(|n| !self.slots[n].param.grad().defined())
            })
            .count();
        (self.buckets.len(), flat, idle)
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

/// torch's AdamW update of `p` with `grad` at step `t` (≥ 1): decoupled decay, the moments
/// (`lerp_`, `mul_` + `addcmul_`), bias corrections, eps outside the root. The same kernels serve
/// one tensor or a bucket's flat buffers.
fn adamw_update(
    p: &mut Tensor,
    grad: &Tensor,
    exp_avg: &mut Tensor,
    exp_avg_sq: &mut Tensor,
    t: i64,
    (lr, wd, b1, b2, eps): (f64, f64, f64, f64, f64),
) {
    if wd != 0.0 {
        let _ = p.g_mul_scalar_(1.0 - lr * wd);
    }
    let _ = exp_avg.lerp_(grad, 1.0 - b1);
    let _ = exp_avg_sq.g_mul_scalar_(b2);
    let _ = exp_avg_sq.addcmul_(&(grad * (1.0 - b2)), grad);
    let bc1 = 1.0 - b1.powi(t as i32);
    let bc2 = 1.0 - b2.powi(t as i32);
    let step_size = lr / bc1;
    let denom = exp_avg_sq.sqrt() / bc2.sqrt() + eps;
    let _ = p.addcdiv_(&(&*exp_avg * (-step_size)), &denom);
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
