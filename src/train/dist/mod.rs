//! Data-parallel training across processes (reference: `torch.distributed` with one process per
//! GPU). A [`Collective`] is the process group the trainer talks to: [`SingleProcess`] when the
//! program was started alone, libtorch's c10d ([`c10d::ProcessGroup`]: TCPStore rendezvous, Gloo)
//! when it was launched the way PyTorch jobs are ([`Launch::from_env`]: torchrun's or Slurm's
//! variables, or `mplug launch`).
//!
//! ```text
//! RANK/WORLD_SIZE/MASTER_* ─▶ Launch ─▶ join ─▶ Collective ─▶ trainer: broadcast weights from rank 0,
//!                                                              all-reduce gradients, gather ITC
//!                                                              features, reduce metrics
//! ```

#[cfg(feature = "dist")]
pub mod c10d;
pub mod launch;
pub mod local_launcher;
pub mod self_check;

use std::sync::Arc;
use std::time::Duration;

use tch::Tensor;

pub use launch::Launch;

use crate::error::{Error, Result};

/// A process group: this process's rank and the collectives, as `torch.distributed`'s (every rank
/// calls the same collectives in the same order; tensors are dense and contiguous).
pub trait Collective: std::fmt::Debug + Send + Sync {
    /// This process's rank (0-based).
    fn rank(&self) -> usize;
    /// Number of processes.
    fn world(&self) -> usize;
    /// Sums `t` over ranks, in place.
    fn all_reduce_sum(&self, t: &mut Tensor) -> Result<()>;
    /// Every rank's `t` concatenated along dimension 0 in rank order (`concat_all_gather`).
    fn all_gather(&self, t: &Tensor) -> Result<Tensor>;
    /// Copies `root`'s `t` into every rank's `t`.
    fn broadcast(&self, t: &mut Tensor, root: usize) -> Result<()>;
    /// Returns once every rank has called it.
    fn barrier(&self) -> Result<()>;
    /// Whether this rank writes checkpoints, metrics and plots (rank 0).
    fn is_main(&self) -> bool {
        self.rank() == 0
    }
    /// A process on its own (no collective to run), as opposed to a group of any size.
    fn is_single_process(&self) -> bool {
        false
    }
    /// The engine: `gloo`, `nccl`, or `none` for one process.
    fn backend(&self) -> &'static str;
    /// Where the collectives' tensors live (CUDA for NCCL).
    fn device(&self) -> tch::Device {
        tch::Device::Cpu
    }

    /// Every rank's bytes, in rank order (torch's `all_gather_object`: lengths first, then one
    /// padded gather).
    fn all_gather_bytes(&self, bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
        if self.is_single_process() {
            return Ok(vec![bytes.to_vec()]);
        }
        let device = self.device();
        let len = Tensor::from_slice(&[bytes.len() as i64]).to_device(device);
        let lens = Vec::<i64>::try_from(&self.all_gather(&len)?.to_device(tch::Device::Cpu))?;
        let max = lens.iter().copied().max().unwrap_or(0).max(1) as usize;
        let mut padded = vec![0u8; max];
        padded[..bytes.len()].copy_from_slice(bytes);
        let rows = self
            .all_gather(
                &Tensor::from_slice(&padded)
                    .view([1, max as i64])
                    .to_device(device),
            )?
            .to_device(tch::Device::Cpu);
        let flat = Vec::<u8>::try_from(&rows.flatten(0, -1))?;
        Ok(lens
            .iter()
            .enumerate()
            .map(|(r, &n)| flat[r * max..r * max + n as usize].to_vec())
            .collect())
    }
}

/// Per-item results of an evaluation whose items were dealt to ranks round robin (rank r holds
/// items r, r + N, …, see `eval::batches::ItemSelection`): on rank 0 every rank's results in item
/// order, `None` on the others.
pub fn gather_in_item_order<T>(group: &dyn Collective, local: Vec<T>) -> Result<Option<Vec<T>>>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    if group.is_single_process() {
        return Ok(Some(local));
    }
    let bytes = serde_json::to_vec(&local).map_err(|e| Error::internal_caused("results", e))?;
    let all = group.all_gather_bytes(&bytes)?;
    if !group.is_main() {
        return Ok(None);
    }
    let mut per_rank = all
        .iter()
        .map(|b| {
            serde_json::from_slice::<Vec<T>>(b)
                .map(|v| v.into_iter())
                .map_err(|e| Error::internal_caused("results of another rank", e))
        })
        .collect::<Result<Vec<_>>>()?;
    // item i is rank (i mod N)'s (i div N)-th: deal them back in turn
    let mut out = Vec::new();
    'items: loop {
        for it in per_rank.iter_mut() {
            match it.next() {
                Some(x) => out.push(x),
                None => break 'items,
            }
        }
    }
    Ok(Some(out))
}

/// The group of one process: every collective is the identity.
#[derive(Debug, Clone, Copy, Default)]
pub struct SingleProcess;

impl Collective for SingleProcess {
    fn rank(&self) -> usize {
        0
    }
    fn world(&self) -> usize {
        1
    }
    fn all_reduce_sum(&self, _t: &mut Tensor) -> Result<()> {
        Ok(())
    }
    fn all_gather(&self, t: &Tensor) -> Result<Tensor> {
        Ok(t.shallow_clone())
    }
    fn broadcast(&self, _t: &mut Tensor, _root: usize) -> Result<()> {
        Ok(())
    }
    fn barrier(&self) -> Result<()> {
        Ok(())
    }
    fn is_single_process(&self) -> bool {
        true
    }
    fn backend(&self) -> &'static str {
        "none"
    }
}

/// How long a rendezvous or collective may wait for the other ranks before failing:
/// `MPLUG_DIST_TIMEOUT` seconds, else `config_s` (the config's `dist.timeout_s`, default torch's
/// 30 minutes for Gloo).
pub fn timeout_from_env(config_s: f64) -> Result<Duration> {
    match std::env::var("MPLUG_DIST_TIMEOUT") {
        Ok(v) => v
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| *s > 0.0 && s.is_finite())
            .map(Duration::from_secs_f64)
            .ok_or_else(|| {
                Error::input(format!(
                    "MPLUG_DIST_TIMEOUT=`{v}` is not a positive number of seconds"
                ))
            }),
        Err(_) => Ok(Duration::from_secs_f64(config_s)),
    }
}

/// The process group this process belongs to: c10d when it was launched as a rank (torchrun,
/// Slurm, `mplug launch`; also a world of 1), else [`SingleProcess`]. Collectives run on
/// `device`'s tensors, with the backend and timeout of `settings` (a training config's `dist:`
/// section) unless the environment overrides them.
pub fn join_from_env(
    device: tch::Device,
    settings: &crate::train::config::DistSection,
) -> Result<Arc<dyn Collective>> {
    match Launch::from_env()? {
        Some(l) => join(
            &l,
            timeout_from_env(settings.timeout_s)?,
            Backend::for_device(device, settings.backend)?,
            device,
        ),
        None => Ok(Arc::new(SingleProcess)),
    }
}

/// The backend a config asks for (`dist.backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// NCCL for CUDA when the build has it, else Gloo.
    #[default]
    Auto,
    /// Gloo.
    Gloo,
    /// NCCL (CUDA only).
    Nccl,
}

/// The c10d backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Gloo: CPU tensors (CUDA ones staged through the host).
    Gloo,
    /// NCCL: CUDA tensors, GPU to GPU.
    Nccl,
}

impl Backend {
    /// `MPLUG_DIST_BACKEND=gloo|nccl` when set, else `choice`; `auto` is NCCL for CUDA when built
    /// with it, else Gloo.
    pub fn for_device(device: tch::Device, choice: BackendChoice) -> Result<Backend> {
        let (choice, from) = match std::env::var("MPLUG_DIST_BACKEND").ok().as_deref() {
            Some("gloo") => (BackendChoice::Gloo, "MPLUG_DIST_BACKEND=gloo"),
            Some("nccl") => (BackendChoice::Nccl, "MPLUG_DIST_BACKEND=nccl"),
            Some(other) => {
                return Err(Error::input(format!(
                    "MPLUG_DIST_BACKEND=`{other}`: use gloo or nccl"
                )));
            }
            None => (choice, "dist.backend: nccl"),
        };
        match choice {
            BackendChoice::Gloo => Ok(Backend::Gloo),
            BackendChoice::Nccl if device.is_cuda() && NCCL_BUILT => Ok(Backend::Nccl),
            BackendChoice::Nccl => Err(Error::input(format!(
                "{from} needs --device cuda and a build against a CUDA libtorch"
            ))),
            BackendChoice::Auto if device.is_cuda() && NCCL_BUILT => Ok(Backend::Nccl),
            BackendChoice::Auto => Ok(Backend::Gloo),
        }
    }
}

/// Whether this build carries the NCCL backend (built against a CUDA libtorch with its headers).
pub const NCCL_BUILT: bool = cfg!(mplug_nccl);

/// Joins the group `launch` describes; NCCL's tensors live on `device`.
#[cfg(feature = "dist")]
pub fn join(
    launch: &Launch,
    timeout: Duration,
    backend: Backend,
    device: tch::Device,
) -> Result<Arc<dyn Collective>> {
    Ok(Arc::new(c10d::ProcessGroup::join(
        launch, timeout, backend, device,
    )?))
}

/// Without the `dist` feature a multi-process launch is refused.
#[cfg(not(feature = "dist"))]
pub fn join(
    launch: &Launch,
    _timeout: Duration,
    _backend: Backend,
    _device: tch::Device,
) -> Result<Arc<dyn Collective>> {
    Err(Error::input_with_hint(
        format!(
            "launched as rank {} of {}, but this mplug was built without the `dist` feature",
            launch.rank, launch.world
        ),
        "build with the default features (scripts/setup.sh installs libgloo-dev)",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_single_process_group_is_the_identity() {
        let g = SingleProcess;
        let mut t = Tensor::from_slice(&[1.0f32, 2.0]);
        g.all_reduce_sum(&mut t).unwrap();
        g.broadcast(&mut t, 0).unwrap();
        assert_eq!(Vec::<f32>::try_from(&t).unwrap(), vec![1.0, 2.0]);
        let all = g.all_gather(&t).unwrap();
        assert_eq!(all.size(), vec![2]);
        assert!(g.is_main() && g.world() == 1);
    }
}
