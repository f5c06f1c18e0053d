//! Where an optimiser step's wall time goes (`train.profile`): waiting for and uploading the
//! batch, the forward (momentum update and the objectives), the backward, the gradient all-reduce
//! over ranks, and the optimiser
//! (clipping, AdamW, zeroing). CUDA runs asynchronously, so on a GPU every boundary synchronises
//! the device first — the numbers are then true per phase, at the price of a little overlap.

use std::time::Instant;

use serde::Serialize;
use tch::Device;

/// A step's phases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Loader wait, host-side input building, upload.
    Data,
    /// Momentum update and the objectives' forward.
    Forward,
    /// Back-propagation.
    Backward,
    /// Averaging the gradients over the ranks (data parallelism; 0 on one process).
    AllReduce,
    /// Clipping, the AdamW update, the temperature clamp, zeroing the gradients.
    Optimizer,
}

/// Milliseconds per phase over one optimiser step (all its micro-batches).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct PhaseTimes {
    /// [`Phase::Data`].
    pub ms_data: f64,
    /// [`Phase::Forward`].
    pub ms_forward: f64,
    /// [`Phase::Backward`].
    pub ms_backward: f64,
    /// [`Phase::AllReduce`].
    pub ms_all_reduce: f64,
    /// [`Phase::Optimizer`].
    pub ms_optimizer: f64,
    /// Host reads of tensor values per step (`.item()` and kin, [`crate::train::host_reads`]):
    /// each one waits for the GPU. 0 for every task but SCST, whose beams go to the host for their
    /// CIDEr-D reward.
    pub host_reads_per_step: f64,
}

/// Adds the time since the previous mark to the phase that just ended; does nothing when off.
#[derive(Debug)]
pub struct PhaseTimer {
    enabled: bool,
    device: Device,
    last: Instant,
    times: PhaseTimes,
}

impl PhaseTimer {
    /// Starts timing now (`enabled`: `train.profile`).
    pub fn new(device: Device, enabled: bool) -> Self {
        PhaseTimer {
            enabled,
            device,
            last: Instant::now(),
            times: PhaseTimes::default(),
        }
    }

    /// The next phase starts now (what happened since the last mark is not booked).
    pub fn restart(&mut self) {
        self.last = Instant::now();
    }

    /// Ends `phase`: waits for the device, then books the time since the last mark to it.
    pub fn mark(&mut self, phase: Phase) {
        if !self.enabled {
            return;
        }
        if let Device::Cuda(i) = self.device {
            tch::Cuda::synchronize(i as i64);
        }
        let now = Instant::now();
        let ms = now.duration_since(self.last).as_secs_f64() * 1e3;
        self.last = now;
        let slot = match phase {
            Phase::Data => &mut self.times.ms_data,
            Phase::Forward => &mut self.times.ms_forward,
            Phase::Backward => &mut self.times.ms_backward,
            Phase::AllReduce => &mut self.times.ms_all_reduce,
            Phase::Optimizer => &mut self.times.ms_optimizer,
        };
        *slot += ms;
    }

    /// The step's times (none when off); the next step starts from zero.
    pub fn take(&mut self) -> Option<PhaseTimes> {
        self.take_mean(1)
    }

    /// The mean per step of the times booked over `steps` steps (none when off); starts from zero.
    pub fn take_mean(&mut self, steps: u64) -> Option<PhaseTimes> {
        let t = std::mem::take(&mut self.times);
        let n = steps.max(1) as f64;
        self.enabled.then_some(PhaseTimes {
            ms_data: t.ms_data / n,
            ms_forward: t.ms_forward / n,
            ms_backward: t.ms_backward / n,
            ms_all_reduce: t.ms_all_reduce / n,
            ms_optimizer: t.ms_optimizer / n,
            host_reads_per_step: t.host_reads_per_step,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_book_elapsed_time_to_the_phase_that_ended() {
        let mut t = PhaseTimer::new(Device::Cpu, true);
        std::thread::sleep(std::time::Duration::from_millis(20));
        t.mark(Phase::Data);
        t.mark(Phase::Forward);
        std::thread::sleep(std::time::Duration::from_millis(10));
        t.mark(Phase::Optimizer);
        std::thread::sleep(std::time::Duration::from_millis(10));
        t.mark(Phase::Optimizer);
        let p = t.take().unwrap();
        assert!(p.ms_data >= 20.0 && p.ms_data < 1000.0, "{p:?}");
        assert!(p.ms_forward < 5.0, "{p:?}");
        assert_eq!(p.ms_backward, 0.0);
        assert!(p.ms_optimizer >= 20.0, "{p:?}");
        assert_eq!(t.take(), Some(PhaseTimes::default()));
        let mut off = PhaseTimer::new(Device::Cpu, false);
        off.mark(Phase::Data);
        assert_eq!(off.take(), None);
    }
}
