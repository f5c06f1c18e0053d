//! The momentum (EMA) model and the ITC feature queues (reference §2.1, ALBEF's
//! `_momentum_update`, `_dequeue_and_enqueue`).

use std::sync::Arc;

use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};
use torch_sys::C_tensor;

use super::dist::{Collective, SingleProcess};
use crate::error::{Error, Result};
use crate::model::{MplugConfig, MplugModel};

/// A frozen copy of the model updated as `p_m ← m·p_m + (1 − m)·p` before each forward.
#[derive(Debug)]
pub struct MomentumModel {
    /// Its variables (saved in checkpoints).
    pub vs: VarStore,
    /// The module tree.
    pub model: MplugModel,
    pairs: Vec<(Tensor, Tensor)>,
}

impl MomentumModel {
    /// A copy of `student` (same names and values), frozen.
    pub fn new(student: &VarStore, config: &MplugConfig, device: Device) -> Result<Self> {
        let mut vs = VarStore::new(device);
        let model = MplugModel::new(&vs.root(), config);
        vs.copy(student)?;
        vs.freeze();
        let mine = vs.variables();
        let theirs = student.variables();
        let mut pairs = Vec::with_capacity(mine.len());
        for (name, m) in mine {
            let p = theirs.get(&name).ok_or_else(|| {
                Error::internal(format!("momentum model has `{name}`, the model not"))
            })?;
            pairs.push((m, p.shallow_clone()));
        }
        Ok(MomentumModel { vs, model, pairs })
    }

    /// One EMA step with factor `m`: `p_m = p_m * m + p * (1 - m)` as ALBEF writes it, for every
    /// parameter in three multi-tensor (`_foreach_`) calls rather than three kernels per tensor.
    pub fn update(&mut self, m: f64) {
        let _guard = tch::no_grad_guard();
        let (mut ema, mut src): (Vec<_>, Vec<_>) = self
            .pairs
            .iter_mut()
            .map(|(pm, p)| (pm.as_mut_ptr(), p.as_mut_ptr()))
            .unzip();
        // SAFETY: the pointers are live `at::Tensor*`s of `self.pairs` for the call's duration;
        // the callee only reads the handles and updates `ema`'s storage in place.
        unsafe { mplug_foreach_ema(ema.as_mut_ptr(), src.as_mut_ptr(), ema.len(), m) }
    }
}

unsafe extern "C" {
    /// `src/train/foreach.cpp`.
    fn mplug_foreach_ema(ema: *mut *mut C_tensor, src: *mut *mut C_tensor, n: usize, m: f64);
}

/// The image/text feature queues with the image index of every entry.
#[derive(Debug)]
pub struct FeatureQueues {
    /// `[D, Q]` image features (columns L2-normalised at init).
    pub image: Tensor,
    /// `[D, Q]` text features.
    pub text: Tensor,
    /// `[1, Q]` image index of each entry (−100 at init).
    pub idx: Tensor,
    /// Next column to write.
    pub ptr: i64,
    /// Every rank enqueues the features of all ranks (ALBEF's `concat_all_gather`).
    group: Arc<dyn Collective>,
    /// `train.simulate_ranks`: the features of ranks 0..N wait here until the last has run.
    simulated: usize,
    pending: Vec<(Tensor, Tensor, Tensor)>,
}

impl FeatureQueues {
    /// Random normalised columns (torch's `randn` under the current seed), idx −100.
    pub fn new(dim: i64, size: i64, device: Device) -> Self {
        let image = Tensor::randn([dim, size], (Kind::Float, device));
        let text = Tensor::randn([dim, size], (Kind::Float, device));
        FeatureQueues {
            image: normalize_columns(&image),
            text: normalize_columns(&text),
            idx: Tensor::full([1, size], -100, (Kind::Int64, device)),
            ptr: 0,
            group: Arc::new(SingleProcess),
            simulated: 1,
            pending: Vec::new(),
        }
    }

    /// Gathers the features of `group`'s ranks before enqueueing (data-parallel training).
    pub fn set_group(&mut self, group: Arc<dyn Collective>) {
        self.group = group;
    }

    /// One process standing for `ranks` ranks: the micro-batches of ranks 0..N all see the queue
    /// as it was, then their features are enqueued together in rank order (the gather).
    pub fn simulate_ranks(&mut self, ranks: usize) {
        self.simulated = ranks.max(1);
    }

    /// Writes the momentum features and indices of the batch — of every rank's batch, in rank
    /// order — at `ptr` (queue size is a multiple of the global batch, checked by the trainer).
    pub fn enqueue(&mut self, image_feat: &Tensor, text_feat: &Tensor, idx: &Tensor) -> Result<()> {
        let _guard = tch::no_grad_guard();
        let (image_feat, text_feat, idx) = if self.simulated > 1 {
            self.pending.push((
                image_feat.detach().copy(),
                text_feat.detach().copy(),
                idx.view([-1]).copy(),
            ));
            if self.pending.len() < self.simulated {
                return Ok(());
            }
            let parts = std::mem::take(&mut self.pending);
            let cat = |f: fn(&(Tensor, Tensor, Tensor)) -> &Tensor| {
                Tensor::cat(&parts.iter().map(f).collect::<Vec<_>>(), 0)
            };
            (cat(|p| &p.0), cat(|p| &p.1), cat(|p| &p.2))
        } else {
            (
                self.group.all_gather(&image_feat.detach().contiguous())?,
                self.group.all_gather(&text_feat.detach().contiguous())?,
                self.group.all_gather(&idx.view([-1]).contiguous())?,
            )
        };
        let b = image_feat.size()[0];
        let q = self.image.size()[1];
        self.image
            .narrow(1, self.ptr, b)
            .copy_(&image_feat.detach().to_kind(Kind::Float).transpose(0, 1));
        self.text
            .narrow(1, self.ptr, b)
            .copy_(&text_feat.detach().to_kind(Kind::Float).transpose(0, 1));
        self.idx.narrow(1, self.ptr, b).copy_(&idx.view([1, -1]));
        self.ptr = (self.ptr + b) % q;
        Ok(())
    }

    /// Named tensors for a checkpoint.
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        vec![
            ("image_queue".into(), self.image.shallow_clone()),
            ("text_queue".into(), self.text.shallow_clone()),
            ("idx_queue".into(), self.idx.shallow_clone()),
            ("queue_ptr".into(), Tensor::from_slice(&[self.ptr])),
        ]
    }

    /// Restores [`FeatureQueues::state_tensors`].
    pub fn load_state(&mut self, tensors: &[(String, Tensor)]) -> Result<()> {
        let get = |n: &str| {
            tensors
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, t)| t)
                .ok_or_else(|| Error::format(format!("checkpoint lacks `{n}`")))
        };
        let _guard = tch::no_grad_guard();
        for (name, dst) in [
            ("image_queue", &mut self.image),
            ("text_queue", &mut self.text),
            ("idx_queue", &mut self.idx),
        ] {
            let src = get(name)?;
            if src.size() != dst.size() {
                return Err(Error::format(format!(
                    "`{name}` has another shape (queue_size changed?)"
                )));
            }
            dst.copy_(src);
        }
        self.ptr = get("queue_ptr")?.int64_value(&[0]);
        Ok(())
    }
}

/// `F.normalize(x, dim=0)`.
fn normalize_columns(x: &Tensor) -> Tensor {
    x / x.norm_scalaropt_dim(2, [0], true).clamp_min(1e-12)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn momentum_update_is_the_ema_of_every_parameter() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/tiny.yaml");
        let (cfg, _) = MplugConfig::from_yaml(&path).unwrap();
        tch::manual_seed(0);
        let vs = VarStore::new(Device::Cpu);
        let _model = MplugModel::new(&vs.root(), &cfg);
        let mut mm = MomentumModel::new(&vs, &cfg, Device::Cpu).unwrap();
        let name = "text_proj.weight";
        let before_m = mm.vs.variables()[name].copy();
        // Move the student: p += 1.
        tch::no_grad(|| {
            let mut p = vs.variables()[name].shallow_clone();
            let _ = p.g_add_scalar_(1.0);
        });
        let p = vs.variables()[name].copy();
        let others: Vec<(String, Tensor)> = mm
            .vs
            .variables()
            .into_iter()
            .map(|(n, t)| (n, t.copy()))
            .collect();
        mm.update(0.9);
        // ALBEF's arithmetic, per tensor: the multi-tensor update is bit-identical
        let want = &before_m * 0.9 + &p * 0.1;
        let got = &mm.vs.variables()[name];
        assert!(got.equal(&want));
        let student = vs.variables();
        for (n, before) in &others {
            let want = before * 0.9 + &student[n] * 0.1;
            assert!(mm.vs.variables()[n].equal(&want), "{n}");
        }
        // The copy started equal and moved a tenth of the way: 0.9 behind. No gradient on it.
        let gap = (&p - got).mean(Kind::Float).double_value(&[]);
        assert!((gap - 0.9).abs() < 1e-5, "{gap}");
        assert!(!got.requires_grad());
        // Same names on both sides.
        assert_eq!(mm.vs.variables().len(), vs.variables().len());
    }

    #[test]
    fn enqueue_writes_columns_at_the_pointer_and_wraps() {
        let mut q = FeatureQueues::new(2, 4, Device::Cpu);
        let f = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]).view([2, 2]);
        let idx = Tensor::from_slice(&[7i64, 8]);
        q.enqueue(&f, &(&f * 10.0), &idx).unwrap();
        assert_eq!(q.ptr, 2);
        let img: Vec<f32> = Vec::try_from(q.image.narrow(1, 0, 2).contiguous().view([-1])).unwrap();
        // Column j holds row j of the batch: [[1, 3], [2, 4]] row-major.
        assert_eq!(img, vec![1.0, 3.0, 2.0, 4.0]);
        let ids: Vec<i64> = Vec::try_from(q.idx.view([-1])).unwrap();
        assert_eq!(ids, vec![7, 8, -100, -100]);
        q.enqueue(&f, &f, &idx).unwrap();
        q.enqueue(&f, &f, &Tensor::from_slice(&[1i64, 2])).unwrap();
        assert_eq!(q.ptr, 2);
        let ids: Vec<i64> = Vec::try_from(q.idx.view([-1])).unwrap();
        assert_eq!(ids, vec![1, 2, 7, 8]);
    }
}
