//! `mplug train` and `mplug plot`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde::{Deserialize, Serialize};

use crate::loader::index::DatasetInput;
use crate::train::{TrainConfig, TrainOptions};

/// Pre-train mPLUG (ITC + ITM + MLM + PrefixLM) on ingested datasets.
///
///   mplug train --config configs/pretrain_tiny.yaml --data data/coco --out runs/tiny
///   mplug train --config configs/pretrain_mplug_base.yaml --data data/coco=1 data/vg=0.5 \
///               --out runs/base --set batch_size=64 --set train.checkpoint_every=500
///   mplug train --resume runs/tiny           # continues exactly after the last checkpoint
///
/// The run directory holds config.yaml (effective config, --set applied) and config_bert.json,
/// data.json, metrics.jsonl (one line per step: losses, lr, samples/s, loader starvation) and
/// checkpoints/step-N/ (model, momentum model, optimiser, queues, loader state), `latest` naming
/// the newest complete one.
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct TrainArgs {
    /// Training YAML (keys of the original pretrain configs; see configs/pretrain_tiny.yaml).
    #[arg(long, required_unless_present = "resume")]
    config: Option<PathBuf>,
    /// Dataset directories (ingested image_text datasets); `DIR=WEIGHT` sets a mixing weight.
    #[arg(long, value_name = "DIR[=W]", num_args = 1.., required_unless_present = "resume")]
    data: Vec<String>,
    /// Run directory (created).
    #[arg(long, required_unless_present = "resume")]
    out: Option<PathBuf>,
    /// Continue the run in this directory from its latest checkpoint.
    #[arg(long, value_name = "RUN_DIR", conflicts_with_all = ["config", "data", "out", "set", "eval_data"])]
    resume: Option<PathBuf>,
    /// Override a config key, e.g. `--set schedular.epochs=2` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Held-out datasets: ITC recall@1, ITM and MLM accuracy every `train.eval_every` steps and at
    /// the start and end, to RUN_DIR/eval.jsonl.
    #[arg(long, value_name = "DIR", num_args = 1..)]
    eval_data: Vec<PathBuf>,
    /// Skip the rows listed by `mplug leakage --exclusions`.
    #[arg(long, value_name = "FILE")]
    exclude: Option<PathBuf>,
    #[command(flatten)]
    run: RunControl,
}

/// How a training run runs: options `mplug train` and `mplug finetune` share.
#[derive(Debug, Args)]
pub struct RunControl {
    /// Stop after this optimiser step (with a checkpoint); `--resume` continues the schedule.
    #[arg(long, value_name = "STEP")]
    pub stop_at_step: Option<u64>,
    /// `cpu`, `cuda` or `auto` (CUDA when available).
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Start over in a run directory that already has checkpoints.
    #[arg(long)]
    pub force: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// `data.json` of a run.
#[derive(Debug, Serialize, Deserialize)]
struct RunData {
    data: Vec<(PathBuf, f64)>,
    exclude: Option<PathBuf>,
    #[serde(default)]
    eval_data: Vec<PathBuf>,
}

pub(crate) fn parse_device(s: &str) -> anyhow::Result<tch::Device> {
    Ok(match s {
        "cpu" => tch::Device::Cpu,
        "cuda" => {
            anyhow::ensure!(
                tch::Cuda::is_available(),
                "--device cuda: libtorch sees no CUDA device"
            );
            tch::Device::Cuda(0)
        }
        "auto" => crate::device::best_device(),
        other => anyhow::bail!("unknown --device `{other}` (cpu, cuda or auto)"),
    })
}

/// `--device` for this process: with `cuda`, device `LOCAL_RANK` when launched as one rank of
/// several (torchrun, Slurm, `mplug launch`).
pub(crate) fn rank_device(s: &str) -> anyhow::Result<tch::Device> {
    local_cuda(parse_device(s)?)
}

/// `device`, with CUDA device `LOCAL_RANK` in place of the first when launched as a rank.
pub(crate) fn local_cuda(device: tch::Device) -> anyhow::Result<tch::Device> {
    match (device, crate::train::dist::Launch::from_env()?) {
        (tch::Device::Cuda(_), Some(l)) => {
            let n = tch::Cuda::device_count() as usize;
            anyhow::ensure!(
                l.local_rank < n,
                "LOCAL_RANK {} but this machine has {n} CUDA device(s)",
                l.local_rank
            );
            Ok(tch::Device::Cuda(l.local_rank))
        }
        _ => Ok(device),
    }
}

/// Refuses a run directory that already holds a run (unless `force`) and parses `--data`, each of
/// which must exist.
pub(crate) fn new_run_inputs(
    out: &std::path::Path,
    force: bool,
    data: &[String],
) -> anyhow::Result<Vec<DatasetInput>> {
    if out.join("latest").exists() && !force {
        anyhow::bail!(
            "`{}` already holds a run; continue it with --resume {0} or start over with --force",
            out.display()
        );
    }
    let data: Vec<DatasetInput> = data
        .iter()
        .map(|s| super::loader::parse_input(s))
        .collect::<anyhow::Result<_>>()?;
    for d in &data {
        anyhow::ensure!(
            d.path.exists(),
            "--data `{}` does not exist",
            d.path.display()
        );
    }
    Ok(data)
}

/// `--force`: removes the previous run's checkpoints, `latest` and metrics.
pub(crate) fn clear_run(out: &std::path::Path) -> anyhow::Result<()> {
    for sub in [
        "checkpoints",
        "latest",
        "metrics.jsonl",
        "eval.jsonl",
        "best.json",
    ] {
        let p = out.join(sub);
        if p.is_dir() {
            fs_err::remove_dir_all(&p)?;
        } else if p.exists() {
            fs_err::remove_file(&p)?;
        }
    }
    Ok(())
}

/// Runs `mplug train`.
pub fn run_train(a: TrainArgs) -> anyhow::Result<()> {
    let device = rank_device(&a.run.device)?;
    let (group, cfg, out, data, exclude, eval_data, resume) = match &a.resume {
        Some(run) => {
            let cfg = TrainConfig::of_run(run)?;
            let group = crate::train::dist::join_from_env(device, &cfg.dist)?;
            let text = fs_err::read_to_string(run.join("data.json"))?;
            let d: RunData = serde_json::from_str(&text)
                .with_context(|| format!("reading {}", run.join("data.json").display()))?;
            let data = d
                .data
                .into_iter()
                .map(|(path, weight)| DatasetInput { path, weight })
                .collect();
            (group, cfg, run.clone(), data, d.exclude, d.eval_data, true)
        }
        None => {
            let (Some(config), Some(out)) = (&a.config, &a.out) else {
                anyhow::bail!("--config, --data and --out are needed (or --resume RUN_DIR)");
            };
            let data = super::train::new_run_inputs(out, a.run.force, &a.data)?;
            for d in &a.eval_data {
                anyhow::ensure!(d.exists(), "--eval-data `{}` does not exist", d.display());
            }
            // Every key and type is checked before the run directory is touched.
            let checked = TrainConfig::load(config, &a.set)?;
            let group = crate::train::dist::join_from_env(device, &checked.dist)?;
            let cfg = prepared_by_rank0(group.as_ref(), out, || {
                if a.run.force && out.exists() {
                    super::train::clear_run(out)?;
                }
                let cfg = TrainConfig::prepare_run(config, &a.set, out)?;
                let rd = RunData {
                    data: data.iter().map(|d| (d.path.clone(), d.weight)).collect(),
                    exclude: a.exclude.clone(),
                    eval_data: a.eval_data.clone(),
                };
                fs_err::write(out.join("data.json"), serde_json::to_string_pretty(&rd)?)?;
                Ok(cfg)
            })?;
            (
                group,
                cfg,
                out.clone(),
                data,
                a.exclude.clone(),
                a.eval_data.clone(),
                false,
            )
        }
    };
    for w in &cfg.warnings {
        eprintln!("warning: {w}");
    }
    if cfg.task != crate::train::config::TaskName::Pretrain {
        return Err(crate::error::Error::input(format!(
            "the config trains `{}`: run it with mplug finetune {0}",
            cfg.task.as_str()
        ))
        .into());
    }
    let opts = TrainOptions {
        data,
        out: out.clone(),
        resume,
        device,
        quiet: a.run.quiet,
        exclude,
        stop_at: a.run.stop_at_step,
        eval_data: eval_data
            .into_iter()
            .map(|path| DatasetInput { path, weight: 1.0 })
            .collect(),
        init: None,
        tokenizer: None,
        validation: None,
        group: group.clone(),
    };
    let summary = crate::train::train(cfg, &opts)?;
    if group.is_main() {
        print_summary(&summary);
    }
    Ok(())
}

/// A new run directory is written by rank 0 alone (`prepare`); the other ranks wait for it and
/// read its config.yaml, so every rank trains the same effective configuration.
pub(crate) fn prepared_by_rank0(
    group: &dyn crate::train::dist::Collective,
    out: &std::path::Path,
    prepare: impl FnOnce() -> anyhow::Result<TrainConfig>,
) -> anyhow::Result<TrainConfig> {
    if group.world() == 1 {
        return prepare();
    }
    let cfg = if group.is_main() {
        Some(prepare()?)
    } else {
        None
    };
    group.barrier()?;
    match cfg {
        Some(cfg) => Ok(cfg),
        None => Ok(TrainConfig::of_run(out)?),
    }
}

/// The one-line end-of-run summary: total loss, the task's losses, throughput, checkpoint.
pub fn print_summary(summary: &crate::train::TrainSummary) {
    match &summary.last {
        Some(l) => {
            let parts: Vec<String> = l
                .values
                .iter()
                .filter(|(k, v)| k.starts_with("loss_") && v.is_finite())
                .map(|(k, v)| format!("{} {v:.4}", k.trim_start_matches("loss_")))
                .collect();
            println!(
                "step {}: loss {:.4} ({}), {:.1} samples/s; checkpoint {}",
                summary.steps,
                l.loss,
                parts.join(" "),
                l.samples_per_s,
                summary
                    .checkpoint
                    .as_ref()
                    .map_or("-".into(), |p| p.display().to_string())
            )
        }
        None => println!("nothing to do: the run is at step {}", summary.steps),
    }
}

/// Draw a run's curves (losses, learning rates, samples/s and loader starvation, accuracies)
/// from RUN_DIR/metrics.jsonl to a PNG.
#[derive(Debug, Args)]
pub struct PlotArgs {
    /// Run directory of `mplug train`.
    run: PathBuf,
    /// Output PNG [default: RUN_DIR/curves.png].
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run_plot(a: PlotArgs) -> anyhow::Result<()> {
    let out = a.out.unwrap_or_else(|| a.run.join("curves.png"));
    crate::train::plot::plot_run(&a.run, &out)?;
    println!("{}", out.display());
    Ok(())
}
