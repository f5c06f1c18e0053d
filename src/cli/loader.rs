//! `mplug loader bench`: the streaming loader's throughput and telemetry.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};

use crate::loader::index::{DatasetIndex, DatasetInput};
use crate::loader::{Loader, LoaderConfig, LoaderState};

#[derive(Debug, Subcommand)]
pub enum LoaderCommand {
    /// Measure samples/s of the loader over datasets (no model): queue depth, consumer wait
    /// ("starved %"), read and worker time per sample.
    ///
    /// The consumer takes each batch and, with --step-ms, sleeps that long to stand in for a
    /// training step; starved % is then the share of time a trainer would wait for data.
    #[command(verbatim_doc_comment)]
    Bench(BenchArgs),
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Dataset directories (or folders searched for datasets); `DIR=WEIGHT` sets a mixing weight.
    #[arg(long, value_name = "DIR[=W]", num_args = 1.., required = true)]
    data: Vec<String>,
    /// Samples per batch.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Output image side.
    #[arg(long, default_value_t = 384)]
    size: u32,
    /// Evaluation transform (resize only) instead of RandomResizedCrop + flip.
    #[arg(long)]
    eval: bool,
    /// Add the reference's RandomAugment(2, 7) to the training transform.
    #[arg(long)]
    randaugment: bool,
    /// Leave out the horizontal flip of the training transform (`train.hflip: false`).
    #[arg(long)]
    no_hflip: bool,
    /// RandomResizedCrop area range of the training transform (`train.crop_scale`): the
    /// reference's 0.5,1 for fine-tuning, 0.2,1 for pre-training.
    #[arg(long, value_name = "LO,HI", default_value = "0.5,1", value_parser = parse_crop_scale)]
    crop_scale: (f64, f64),
    /// MLM masking probability (0 = off).
    #[arg(long, default_value_t = 0.0)]
    mlm: f64,
    /// Worker threads [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
    /// Batches to time (after 2 warm-up batches).
    #[arg(long, default_value_t = 50)]
    batches: u64,
    /// Simulated training step per batch, in milliseconds.
    #[arg(long, default_value_t = 0.0)]
    step_ms: f64,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also build the tensors (uint8 NCHW + ids) on the CPU for each batch.
    #[arg(long)]
    tensors: bool,
    /// Skip the training rows of an exclusion list (`mplug leakage --exclusions`).
    #[arg(long, value_name = "FILE")]
    exclude: Option<PathBuf>,
    /// Read only the rows of a frozen sample list (`mplug select`).
    #[arg(long, value_name = "LIST")]
    samples: Option<PathBuf>,
}

fn parse_crop_scale(s: &str) -> Result<(f64, f64), String> {
    let bad = || format!("`{s}`: expected LO,HI with 0 < LO <= HI <= 1, e.g. 0.5,1");
    let (lo, hi) = s.split_once(',').ok_or_else(bad)?;
    let (lo, hi): (f64, f64) = (
        lo.trim().parse().map_err(|_| bad())?,
        hi.trim().parse().map_err(|_| bad())?,
    );
    if !(lo > 0.0 && lo <= hi && hi <= 1.0) {
        return Err(bad());
    }
    Ok((lo, hi))
}

pub(crate) fn parse_input(s: &str) -> anyhow::Result<DatasetInput> {
    let (path, weight) = match s.rsplit_once('=') {
        Some((p, w)) => (
            p,
            w.parse::<f64>()
                .map_err(|_| anyhow::anyhow!("bad weight in `{s}`"))?,
        ),
        None => (s, 1.0),
    };
    Ok(DatasetInput {
        path: PathBuf::from(path),
        weight,
    })
}

pub fn run(cmd: LoaderCommand) -> anyhow::Result<()> {
    let LoaderCommand::Bench(a) = cmd;
    let inputs: Vec<DatasetInput> = a
        .data
        .iter()
        .map(|s| parse_input(s))
        .collect::<anyhow::Result<_>>()?;
    let index = Arc::new(DatasetIndex::open(&inputs)?);
    let threads = a
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let config = LoaderConfig {
        seed: a.seed,
        batch_size: a.batch_size,
        image_size: a.size,
        train: !a.eval,
        randaugment: a.randaugment,
        hflip: !a.no_hflip,
        crop_scale: a.crop_scale,
        mlm_probability: a.mlm,
        threads,
        epochs: u64::MAX,
        ..LoaderConfig::default()
    };
    let state = LoaderState {
        seed: a.seed,
        epoch: 0,
        position: 0,
    };
    let mut excluded = match &a.exclude {
        Some(f) => index.excluded_samples(f)?,
        None => HashSet::new(),
    };
    if let Some(list) = &a.samples {
        let listed = index.listed_samples(list)?;
        excluded.extend((0..index.len()).filter(|s| !listed.contains(s)));
    }
    let mut loader = Loader::start(index.clone(), Arc::new(excluded), config, state)?;
    for _ in 0..2 {
        loader
            .next_host()
            .ok_or_else(|| anyhow::anyhow!("no data"))??;
    }
    let s = loader.stats();
    let (samples0, read0, work0, wait0) = (
        s.samples.load(Ordering::Relaxed),
        s.read_ns.load(Ordering::Relaxed),
        s.work_ns.load(Ordering::Relaxed),
        s.wait_ns.load(Ordering::Relaxed),
    );
    let started = Instant::now();
    let mut n = 0u64;
    let mut depth = 0usize;
    for _ in 0..a.batches {
        let b = loader
            .next_host()
            .ok_or_else(|| anyhow::anyhow!("loader ended"))??;
        depth += loader.queue_depth();
        n += b.batch as u64;
        if a.tensors {
            let _t = b.to_tensors(tch::Device::Cpu, false);
        }
        if a.step_ms > 0.0 {
            std::thread::sleep(Duration::from_secs_f64(a.step_ms / 1000.0));
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let s = loader.stats();
    let done = (s.samples.load(Ordering::Relaxed) - samples0).max(1) as f64;
    let wait = (s.wait_ns.load(Ordering::Relaxed) - wait0) as f64 / 1e9;
    let report = serde_json::json!({
        "samples_per_s": n as f64 / secs,
        "samples_per_s_per_thread": n as f64 / secs / threads as f64,
        "starved_percent": 100.0 * wait / secs,
        "mean_queue_depth": depth as f64 / a.batches.max(1) as f64,
        "read_ms_per_sample": (s.read_ns.load(Ordering::Relaxed) - read0) as f64 / 1e6 / done,
        "work_ms_per_sample": (s.work_ns.load(Ordering::Relaxed) - work0) as f64 / 1e6 / done,
        "batches": a.batches, "batch_size": a.batch_size, "size": a.size, "threads": threads,
        "train_augment": !a.eval, "hflip": !a.eval && !a.no_hflip,
        "crop_scale": (!a.eval).then_some([a.crop_scale.0, a.crop_scale.1]),
        "randaugment": !a.eval && a.randaugment, "samples_in_index": index.len(),
    });
    println!(
        "{:.1} samples/s ({:.1} per worker thread), starved {:.1}%, queue depth {:.1}, read {:.3} ms/sample, work {:.2} ms/sample",
        report["samples_per_s"].as_f64().unwrap_or(0.0),
        report["samples_per_s_per_thread"].as_f64().unwrap_or(0.0),
        report["starved_percent"].as_f64().unwrap_or(0.0),
        report["mean_queue_depth"].as_f64().unwrap_or(0.0),
        report["read_ms_per_sample"].as_f64().unwrap_or(0.0),
        report["work_ms_per_sample"].as_f64().unwrap_or(0.0),
    );
    println!("{report}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_crop_scale;

    #[test]
    fn crop_scale_takes_an_ordered_pair_inside_zero_one() {
        assert_eq!(parse_crop_scale("0.8,1"), Ok((0.8, 1.0)));
        assert_eq!(parse_crop_scale(" 0.2 , 0.9"), Ok((0.2, 0.9)));
        for bad in ["1,0.5", "0,1", "0.5,1.5", "0.5", "a,b"] {
            assert!(parse_crop_scale(bad).is_err(), "{bad}");
        }
    }
}
