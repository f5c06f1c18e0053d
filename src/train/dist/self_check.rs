//! `mplug doctor --collectives`: every collective once on small known tensors, and the all-reduce
//! bandwidth — what a user runs first on a new cluster (as `nccl-tests` or torch's
//! `all_reduce_bench`).

use std::time::Instant;

use serde::Serialize;
use tch::{Device, Kind, Tensor};

use super::Collective;
use crate::error::Result;

/// What one rank saw.
#[derive(Debug, Clone, Serialize)]
pub struct CollectiveReport {
    /// This rank.
    pub rank: usize,
    /// World size.
    pub world: usize,
    /// `gloo`, `nccl` (or `none`).
    pub backend: &'static str,
    /// Device of the tensors.
    pub device: String,
    /// `all_reduce_sum` of `(rank + 1) · [1, 2, 3]`.
    pub all_reduce: Vec<f64>,
    /// `all_gather` of `[rank, 10 · rank]`.
    pub all_gather: Vec<Vec<f64>>,
    /// `broadcast` from the last rank of a tensor holding each rank's own rank.
    pub broadcast: Vec<f64>,
    /// Bytes all-reduced for the bandwidth figure.
    pub bandwidth_bytes: usize,
    /// Its algorithm bandwidth in GB/s (bytes / time).
    pub alg_gb_per_s: f64,
    /// Its bus bandwidth in GB/s (`2 (n − 1) / n × bytes / time`, nccl-tests' convention: what
    /// each link carries; 0 for one rank).
    pub bus_gb_per_s: f64,
}

fn to_vec(t: &Tensor) -> Result<Vec<f64>> {
    Ok(Vec::<f64>::try_from(
        &t.to_device(Device::Cpu)
            .to_kind(Kind::Double)
            .flatten(0, -1),
    )?)
}

/// Runs the check on `group` with tensors on `device` (`bytes` for the bandwidth).
pub fn check(group: &dyn Collective, device: Device, bytes: usize) -> Result<CollectiveReport> {
    let (rank, world) = (group.rank(), group.world());
    let mut t = Tensor::from_slice(&[1.0f32, 2.0, 3.0]).to_device(device) * (rank as f64 + 1.0);
    group.all_reduce_sum(&mut t)?;
    let all_reduce = to_vec(&t)?;
    let row = Tensor::from_slice(&[rank as f32, 10.0 * rank as f32])
        .view([1, 2])
        .to_device(device);
    let gathered = group.all_gather(&row)?;
    let all_gather = (0..gathered.size()[0])
        .map(|i| to_vec(&gathered.get(i)))
        .collect::<Result<Vec<_>>>()?;
    let mut b = Tensor::full([4], rank as f64, (Kind::Float, device));
    group.broadcast(&mut b, world - 1)?;
    let broadcast = to_vec(&b)?;
    let n = (bytes / 4).max(1) as i64;
    let mut big = Tensor::ones([n], (Kind::Float, device));
    group.all_reduce_sum(&mut big)?; // warm-up (connections, buffers)
    group.barrier()?;
    let reps = 5;
    let start = Instant::now();
    for _ in 0..reps {
        group.all_reduce_sum(&mut big)?;
    }
    let _ = to_vec(&big.narrow(0, 0, 1))?; // waits for the device
    let secs = start.elapsed().as_secs_f64() / reps as f64;
    let alg = (n * 4) as f64 / secs.max(1e-12) / 1e9;
    let bus = 2.0 * (world as f64 - 1.0) / world as f64 * alg;
    Ok(CollectiveReport {
        rank,
        world,
        backend: group.backend(),
        device: format!("{device:?}"),
        all_reduce,
        all_gather,
        broadcast,
        bandwidth_bytes: (n * 4) as usize,
        alg_gb_per_s: alg,
        bus_gb_per_s: bus,
    })
}
