//! The metrics of the steps since the last metrics line, kept on the device and read by the host
//! once per line (issue 20): a step that never reads a value never waits for the GPU, so the host
//! can queue the next step's kernels while the device still runs this one. `train.log_every` sets
//! how often the host reads (every step by default, as the reference's per-iteration `.item()`).
//!
//! What a line shows is the *last* step's loss and values (as before), the interval's mean
//! samples/s, and whether *any* micro-batch of the interval had a non-finite loss — the check that
//! once read every loss on the spot.

use std::collections::BTreeMap;

use tch::{Device, Kind, Tensor};

use super::dist::Collective;
use super::task::{TaskLosses, metric};
use crate::error::Result;

/// Device-side accumulators of one metrics interval.
#[derive(Debug, Default)]
pub struct IntervalMetrics {
    /// This step's loss (mean over micro-batches and simulated ranks).
    loss: Option<Tensor>,
    /// This step's named values, likewise.
    values: BTreeMap<String, Tensor>,
    /// Whether a loss of the interval was NaN or ±∞ (a bool on the device).
    nonfinite: Option<Tensor>,
    /// Optimiser steps, this rank's samples and step seconds since the last read.
    steps: u64,
    samples: u64,
    secs: f64,
}

/// What one read returns (means over ranks where a group runs).
#[derive(Debug, Clone, PartialEq)]
pub struct IntervalRead {
    /// The last step's loss.
    pub loss: f64,
    /// The last step's named values.
    pub values: BTreeMap<String, f64>,
    /// The last step's gradient norm before clipping.
    pub grad_norm: f64,
    /// The ITC temperature after the last step.
    pub temp: f64,
    /// A loss of the interval, on some rank, was not finite.
    pub nonfinite: bool,
    /// Optimiser steps in the interval.
    pub steps: u64,
    /// Samples per second over the interval's steps (every rank's samples).
    pub samples_per_s: f64,
}

impl IntervalMetrics {
    /// Adds a micro-batch's loss and values, each divided by `share` (micro-batches per step).
    pub fn add_micro_batch(&mut self, losses: &TaskLosses, share: f64) {
        let loss = metric(&losses.total);
        let bad = loss.isfinite().logical_not();
        self.nonfinite = Some(match self.nonfinite.take() {
            Some(b) => b.logical_or(&bad),
            None => bad,
        });
        add(&mut self.loss, &loss, share);
        for (name, v) in &losses.values {
            let mut acc = self.values.remove(name);
            add(&mut acc, v, share);
            if let Some(acc) = acc {
                self.values.insert(name.clone(), acc);
            }
        }
    }

    /// Ends an optimiser step of `samples` (this rank's) that took `secs`. Unless the next call is
    /// [`Self::read`], the step's loss and values are dropped (only the non-finite flag stays).
    pub fn end_step(&mut self, samples: u64, secs: f64) {
        self.steps += 1;
        self.samples += samples;
        self.secs += secs;
    }

    /// Forgets the step's loss and values (a step without a metrics line).
    pub fn discard_step(&mut self) {
        self.loss = None;
        self.values.clear();
    }

    /// One host read of everything (after one all-reduce where a group runs); starts a new interval.
    pub fn read(
        &mut self,
        grad_norm: &Tensor,
        temp: &Tensor,
        group: &dyn Collective,
    ) -> Result<IntervalRead> {
        let device = grad_norm.device();
        let zero = || Tensor::zeros([] as [i64; 0], (Kind::Double, device));
        let loss = self.loss.take().unwrap_or_else(zero);
        let flag = self
            .nonfinite
            .take()
            .map_or_else(zero, |b| b.to_kind(Kind::Double));
        let values = std::mem::take(&mut self.values);
        // reduced over ranks: loss, flag, samples, values…; the same on every rank: norm, temp
        let mut reduced: Vec<Tensor> = vec![loss, flag, zero() + self.samples as f64];
        reduced.extend(values.values().map(|v| v.to_device(device)));
        let mut sums = Tensor::stack(&reduced, 0);
        let world = group.world() as f64;
        if !group.is_single_process() {
            sums = sums.to_device(group.device());
            group.all_reduce_sum(&mut sums)?;
        }
        let shared = Tensor::stack(&[metric(grad_norm), metric(temp)], 0).to_device(sums.device());
        let all = Vec::<f64>::try_from(&Tensor::cat(&[sums, shared], 0).to_device(Device::Cpu))?;
        let n = reduced.len();
        let read = IntervalRead {
            loss: all[0] / world,
            nonfinite: all[1] > 0.0,
            values: values
                .keys()
                .cloned()
                .zip(all[3..n].iter().map(|s| s / world))
                .collect(),
            grad_norm: all[n],
            temp: all[n + 1],
            steps: self.steps,
            samples_per_s: all[2] / self.secs.max(1e-9),
        };
        self.steps = 0;
        self.samples = 0;
        self.secs = 0.0;
        Ok(read)
    }
}

/// `acc += v / share`, in f64 on the device (the host's former arithmetic, in the same order).
fn add(acc: &mut Option<Tensor>, v: &Tensor, share: f64) {
    let part = v.to_kind(Kind::Double) / share;
    *acc = Some(match acc.take() {
        Some(a) => a + part,
        None => part,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::dist::SingleProcess;
    use crate::train::task::metric_value;

    fn losses(total: f64, acc: f64) -> TaskLosses {
        TaskLosses {
            total: Tensor::from(total as f32),
            values: BTreeMap::from([("acc".to_string(), metric_value(acc, Device::Cpu))]),
        }
    }

    /// Two micro-batches per step: the line holds the last step's mean over its micro-batches,
    /// the interval's samples/s, and a NaN of an earlier, unread step.
    #[test]
    fn a_read_holds_the_last_step_and_the_intervals_flag() {
        let group = SingleProcess;
        let mut m = IntervalMetrics::default();
        m.add_micro_batch(&losses(f64::NAN, 0.0), 2.0);
        m.add_micro_batch(&losses(1.0, 0.0), 2.0);
        m.end_step(8, 1.0);
        m.discard_step();
        m.add_micro_batch(&losses(1.5, 0.25), 2.0);
        m.add_micro_batch(&losses(2.5, 0.75), 2.0);
        m.end_step(8, 3.0);
        let norm = Tensor::from(0.5f32);
        let temp = Tensor::from(0.07f64);
        let r = m.read(&norm, &temp, &group).unwrap();
        assert_eq!(r.loss, 2.0);
        assert_eq!(r.values["acc"], 0.5);
        assert_eq!(r.grad_norm, 0.5);
        assert_eq!(r.temp, 0.07);
        assert!(r.nonfinite);
        assert_eq!(r.steps, 2);
        assert_eq!(r.samples_per_s, 4.0); // 16 samples in 4 s
        // the next interval starts clean
        m.add_micro_batch(&losses(3.0, 1.0), 1.0);
        m.end_step(2, 1.0);
        let r = m.read(&norm, &temp, &group).unwrap();
        assert!(!r.nonfinite);
        assert_eq!((r.loss, r.steps, r.samples_per_s), (3.0, 1, 2.0));
    }
}
