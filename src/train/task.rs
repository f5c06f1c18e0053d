//! A training task: what the shared loop ([`super::trainer`]) asks of pre-training, VQA, … — the
//! sample kind the loader serves, the losses of a micro-batch (named, for the metrics), and any
//! state besides the model and optimiser that a checkpoint must hold (momentum model, queues).

use std::collections::BTreeMap;

use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use super::config::TrainConfig;
use crate::error::Result;
use crate::eval::task_model::TaskParts;
use crate::loader::HostBatch;
use crate::loader::sample::SampleKind;
use crate::model::MplugModel;

/// Where the loop stands when it asks for a micro-batch's losses.
#[derive(Debug, Clone, Copy)]
pub struct StepContext {
    /// Epoch of the batch.
    pub epoch: u64,
    /// Iteration within the epoch.
    pub iter: u64,
    /// Iterations per epoch.
    pub iters_per_epoch: u64,
    /// The run's seed.
    pub seed: u64,
    /// With `train.simulate_ranks`, the rank this micro-batch stands for (else 0): only rank 0's
    /// micro-batch moves the momentum model, which every rank updates identically.
    pub sim_rank: usize,
}

/// The losses of one micro-batch.
#[derive(Debug)]
pub struct TaskLosses {
    /// What is back-propagated.
    pub total: Tensor,
    /// Named values for the metrics line (`loss_*`, accuracies, `alpha`; NaN for "off"), as
    /// [`metric`]s: the loop accumulates them on the device and reads them once per metrics line,
    /// so a step never waits for the device (issue 20).
    pub values: BTreeMap<String, Tensor>,
}

/// A micro-batch's value as the loop keeps it: detached, 0-dim, f64, on the tensor's device —
/// no host read.
pub fn metric(t: &Tensor) -> Tensor {
    t.detach().to_kind(Kind::Double).reshape([] as [i64; 0])
}

/// A value the host already knows (a schedule's α, a reward), beside the device's ones: a fill
/// kernel, not a copy the host would wait for.
pub fn metric_value(v: f64, device: Device) -> Tensor {
    Tensor::full([] as [i64; 0], v, (Kind::Double, device))
}

/// One of the trainable tasks.
pub trait TrainTask {
    /// What the loader serves.
    fn sample_kind(&self) -> SampleKind;
    /// Which parameters the task runs (an `--init` checkpoint must hold them).
    fn parts(&self) -> TaskParts;
    /// MLM selection probability the loader applies (0: none).
    fn mlm_probability(&self) -> f64 {
        0.0
    }
    /// The losses of one micro-batch (the loop back-propagates `total`).
    fn losses(
        &mut self,
        model: &MplugModel,
        batch: &HostBatch,
        cfg: &TrainConfig,
        ctx: StepContext,
    ) -> Result<TaskLosses>;
    /// The task's classification head, if it has one (evaluation runs it).
    fn classifier(&self) -> Option<&crate::model::heads::ClassifierHead> {
        None
    }
    /// The momentum model's variables, if the task keeps one.
    fn momentum_store(&self) -> Option<&VarStore> {
        None
    }
    /// Mutable access, to restore it.
    fn momentum_store_mut(&mut self) -> Option<&mut VarStore> {
        None
    }
    /// Tensors saved beside the optimiser's (queues).
    fn state_tensors(&self) -> Vec<(String, Tensor)> {
        Vec::new()
    }
    /// Data parallelism: the process group the task's cross-rank state (ITC queues) gathers over,
    /// and the ranks one process simulates (`train.simulate_ranks`).
    fn join_group(
        &mut self,
        _group: std::sync::Arc<dyn crate::train::dist::Collective>,
        _simulated_ranks: usize,
    ) {
    }
    /// Restores [`Self::state_tensors`].
    fn load_state(&mut self, _tensors: &[(String, Tensor)]) -> Result<()> {
        Ok(())
    }
}
