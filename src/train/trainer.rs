//! The training loop of every task: loader → the task's losses ([`TrainTask`]) → AdamW
//! (accumulation, clipping, the reference's schedule) → metrics and atomic checkpoints; `resume`
//! continues exactly.
//!
//! Determinism: the model, momentum copy and queues are initialised under `manual_seed(seed)`;
//! before every micro-batch libtorch's generator is re-seeded from (seed, micro-step), so dropout
//! and the ITM negative draws depend only on the step, and a resumed run needs no RNG snapshot.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use tch::nn::VarStore;
use tch::{Device, Tensor};

use super::checkpoint::{self, CheckpointParts, TrainState};
use super::config::{TaskName, TrainConfig};
use super::dist::Collective;
#[cfg(doc)]
use super::dist::SingleProcess;
use super::interval_metrics::IntervalMetrics;
use super::optim::AdamW;
use super::phases::{Phase, PhaseTimer, PhaseTimes};
use super::schedule::CosineSchedule;
use super::task::{StepContext, TrainTask};
use super::tasks::caption::CaptionTask;
use super::tasks::caption_scst::CaptionScstTask;
use super::tasks::grounding::GroundingTask;
use super::tasks::pretrain::PretrainTask;
use super::tasks::statement::StatementTrainTask;
use super::tasks::vqa::VqaTask;
use crate::error::{Error, Result};
use crate::eval::statement_task::StatementTask;
use crate::loader::index::{DatasetIndex, DatasetInput};
use crate::loader::{Loader, LoaderConfig, LoaderState};
use crate::model::MplugModel;
use crate::text::BertTokenizer;

/// What `mplug train` was asked to do.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Datasets with mixing weights.
    pub data: Vec<DatasetInput>,
    /// Run directory.
    pub out: PathBuf,
    /// Continue from `out/latest`.
    pub resume: bool,
    /// Training device.
    pub device: Device,
    /// No progress bar.
    pub quiet: bool,
    /// Exclusion list (`mplug leakage`).
    pub exclude: Option<PathBuf>,
    /// Stop (with a checkpoint) after this optimiser step, whatever the schedule says.
    pub stop_at: Option<u64>,
    /// Held-out datasets evaluated every `train.eval_every` steps and at the end (`eval.jsonl`).
    pub eval_data: Vec<DatasetInput>,
    /// Weights the model starts from (fine-tuning's `--init`); a resume ignores them.
    pub init: Option<PathBuf>,
    /// The vocabulary (tasks that tokenise answers at load time).
    pub tokenizer: Option<Arc<BertTokenizer>>,
    /// Fine-tuning: the held-out split scored after every checkpoint (`eval.jsonl`, `best.json`).
    pub validation: Option<super::validation::ValidationSpec>,
    /// The process group (data parallelism); [`SingleProcess`] for one process. Only its rank 0
    /// writes metrics, evaluations and checkpoints.
    pub group: Arc<dyn Collective>,
}

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, Serialize)]
pub struct MetricsLine {
    /// Optimiser step (1-based, after the update).
    pub step: u64,
    /// Epoch of the last micro-batch.
    pub epoch: u64,
    /// Iteration within the epoch.
    pub iter: u64,
    /// Non-visual lr.
    pub lr: f64,
    /// Visual lr.
    pub lr_visual: f64,
    /// Sum of losses (mean over micro-batches).
    pub loss: f64,
    /// The task's named values (mean over micro-batches): pre-training's `alpha`, `loss_itc`,
    /// `loss_itm`, `loss_mlm`, `loss_prefix`, `itm_acc`, `mlm_acc`; VQA's `loss_vqa`.
    #[serde(flatten)]
    pub values: BTreeMap<String, f64>,
    /// Gradient L2 norm before clipping.
    pub grad_norm: f64,
    /// ITC temperature.
    pub temp: f64,
    /// Samples per second over the steps since the previous line.
    pub samples_per_s: f64,
    /// Share of time the trainer waited for the loader, since the (re)start, in %.
    pub loader_starved_pct: f64,
    /// Batches waiting in the loader's queue.
    pub loader_queue_depth: usize,
    /// Wall time per phase (mean per step since the previous line) and host reads per step, with
    /// `train.profile`.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub phases: Option<PhaseTimes>,
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    /// Optimiser steps at the end.
    pub steps: u64,
    /// Last metrics line.
    pub last: Option<MetricsLine>,
    /// The last checkpoint.
    pub checkpoint: Option<PathBuf>,
}

/// Everything that changes during training.
struct Trainer {
    cfg: TrainConfig,
    vs: VarStore,
    model: MplugModel,
    task: Box<dyn TrainTask>,
    opt: AdamW,
    state: TrainState,
    device: Device,
}

fn config_hash(cfg: &TrainConfig) -> String {
    blake3::hash(cfg.yaml.as_bytes()).to_hex().to_string()
}

impl Trainer {
    fn new(cfg: TrainConfig, opts: &TrainOptions) -> Result<Self> {
        let device = opts.device;
        let seed = cfg.train.seed;
        tch::manual_seed(seed as i64);
        let mut vs = VarStore::new(device);
        let model = MplugModel::new(&vs.root(), &cfg.model);
        let tokenizer = || {
            opts.tokenizer
                .clone()
                .ok_or_else(|| Error::input("fine-tuning needs the vocabulary (--vocab)"))
        };
        // Task heads are built before `--init` loads (a checkpoint may hold them); the momentum
        // model of pre-training copies the model after it.
        let statement = |t| -> Result<Box<dyn TrainTask>> {
            Ok(Box::new(StatementTrainTask::new(
                &vs,
                &cfg,
                t,
                tokenizer()?,
                device,
            )))
        };
        let task: Option<Box<dyn TrainTask>> = match cfg.task {
            TaskName::Pretrain => None,
            TaskName::Vqa => Some(Box::new(VqaTask::new(tokenizer()?, device))),
            TaskName::Caption => Some(Box::new(CaptionTask::new(tokenizer()?, device))),
            TaskName::CaptionScst => {
                let settings = crate::eval::settings::EvalSettings::from_yaml_text(
                    &cfg.yaml,
                    std::path::Path::new("config.yaml"),
                    crate::eval::settings::CAPTION_DEFAULTS,
                )?;
                Some(Box::new(CaptionScstTask::new(
                    tokenizer()?,
                    settings.generate,
                    device,
                )))
            }
            TaskName::Grounding => Some(Box::new(GroundingTask::new(tokenizer()?, device))),
            TaskName::SnliVe => Some(statement(StatementTask::SnliVe)?),
            TaskName::Nlvr2 => Some(statement(StatementTask::Nlvr2)?),
            TaskName::Retrieval => None,
        };
        if let Some(init) = &opts.init {
            let parts = task
                .as_ref()
                .map_or(crate::eval::task_model::TaskParts::Retrieval, |t| t.parts());
            load_init(&mut vs, &cfg, init, parts)?;
        }
        // DDP's start: every rank takes rank 0's weights (the momentum copy is made after this).
        if !opts.group.is_single_process() {
            broadcast_weights(&vs, opts.group.as_ref())?;
        }
        let task = match (task, cfg.task) {
            (Some(t), _) => t,
            (None, TaskName::Retrieval) => Box::new(PretrainTask::with_kind(
                &vs,
                &cfg,
                device,
                crate::loader::sample::SampleKind::CaptionEach,
            )?),
            (None, _) => Box::new(PretrainTask::new(&vs, &cfg, device)?),
        };
        let mut task = task;
        task.join_group(opts.group.clone(), cfg.train.simulate_ranks.max(1) as usize);
        let opt = AdamW::new(model.trainable_variables(&vs), cfg.optimizer.weight_decay);
        let state = TrainState {
            format: "mplug.train_state".into(),
            version: 1,
            step: 0,
            micro_step: 0,
            loader: LoaderState {
                seed,
                epoch: 0,
                position: 0,
            },
            samples: 0,
            config_blake3: config_hash(&cfg),
        };
        Ok(Trainer {
            cfg,
            vs,
            model,
            task,
            opt,
            state,
            device,
        })
    }

    fn restore(&mut self, dir: &Path) -> Result<()> {
        let st = checkpoint::read_state(dir)?;
        if st.config_blake3 != config_hash(&self.cfg) {
            return Err(Error::input_with_hint(
                format!("`{}` was written with another configuration", dir.display()),
                "resume with the run's own config.yaml (mplug train --resume RUN_DIR reads it)",
            ));
        }
        self.vs.load(dir.join(checkpoint::MODEL_FILE))?;
        if let Some(m) = self.task.momentum_store_mut() {
            m.load(dir.join(checkpoint::MOMENTUM_FILE))?;
        }
        let tensors = Tensor::read_safetensors(dir.join(checkpoint::OPTIMIZER_FILE))?;
        let tensors: Vec<(String, Tensor)> = tensors
            .into_iter()
            .map(|(n, t)| (n, t.to_device(self.device)))
            .collect();
        self.opt.load_state(&tensors)?;
        self.task.load_state(&tensors)?;
        self.state = st;
        Ok(())
    }

    fn save(&self, run_dir: &Path) -> Result<PathBuf> {
        let mut optimizer = self.opt.state_tensors();
        optimizer.extend(self.task.state_tensors());
        let optimizer = optimizer
            .into_iter()
            .map(|(n, t)| (n, t.to_device(Device::Cpu).contiguous()))
            .collect();
        checkpoint::write(
            run_dir,
            CheckpointParts {
                model: &self.vs,
                momentum: self.task.momentum_store(),
                optimizer,
                state: self.state.clone(),
            },
        )
    }
}

/// Loads `--init` weights into `vs`: strict about the parameters the task runs, lenient about
/// the rest (a pre-training checkpoint has no task heads; a task checkpoint no pre-training ones).
/// `init` is a weights file or a `mplug train` checkpoint directory.
fn load_init(
    vs: &mut VarStore,
    cfg: &TrainConfig,
    init: &Path,
    parts: crate::eval::task_model::TaskParts,
) -> Result<()> {
    let file = if init.is_dir() {
        init.join(checkpoint::MODEL_FILE)
    } else {
        init.to_path_buf()
    };
    let (mut tensors, _) = crate::model::weights::read_weights(&file)?;
    // Another task's head (SNLI-VE's 3-way head into NLVR2's pair head, as ALBEF starts NLVR2 from
    // another stage's weights) starts from its initialisation, like a head the checkpoint lacks:
    // all of it, when any of its tensors has another shape.
    let vars = vs.variables();
    let other_head = tensors.iter().find(|(k, t)| {
        k.starts_with("cls_head.") && vars.get(k).is_some_and(|v| v.size() != t.size())
    });
    if let Some((k, t)) = other_head {
        eprintln!(
            "warning: --init `{}` holds another task's head (`{k}` {:?}, this task's {:?}): \
             cls_head starts from its initialisation",
            file.display(),
            t.size(),
            vars[k].size()
        );
        tensors.retain(|(k, _)| !k.starts_with("cls_head."));
    }
    let opts = crate::model::weights::LoadOptions {
        allow_missing: true,
        allow_unexpected: true,
    };
    let report = crate::model::weights::load_state_dict(vs, tensors, &cfg.model, opts).map_err(
        |e| match e {
            Error::Input {
                message,
                hint,
                source,
            } => Error::Input {
                message: format!("--init `{}`: {message}", file.display()),
                hint,
                source,
            },
            other => other,
        },
    )?;
    // a task head absent from the checkpoint starts from its initialisation
    let needed: Vec<&String> = report
        .missing
        .iter()
        .filter(|k| parts.runs(k) && !k.starts_with("cls_head."))
        .collect();
    if let Some(first) = needed.first() {
        return Err(Error::input_with_hint(
            format!(
                "--init `{}` lacks {} parameters this task trains, the first `{first}`",
                file.display(),
                needed.len()
            ),
            "pass a checkpoint of this model size (mplug train, mplug convert, or a released .pth)",
        ));
    }
    Ok(())
}

/// Copies rank 0's value of every variable to every rank, in name order.
fn broadcast_weights(vs: &VarStore, group: &dyn Collective) -> Result<()> {
    let _guard = tch::no_grad_guard();
    for (_, t) in crate::model::weights::named_variables(vs) {
        let mut t = t.shallow_clone();
        group.broadcast(&mut t, 0)?;
    }
    Ok(())
}

/// Keeps the metrics lines of steps ≤ `step` (a resumed run rewrites what followed).
fn truncate_metrics(path: &Path, step: u64) -> Result<()> {
    if !path.is_file() {
        return Ok(());
    }
    let text = fs_err::read_to_string(path)?;
    let kept: String = text
        .lines()
        .filter(|line| {
            serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v.get("step").and_then(|s| s.as_u64()))
                .is_some_and(|s| s <= step)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    fs_err::write(path, kept)?;
    Ok(())
}

/// Mixes (seed, micro-step, rank) into libtorch's seed: ranks draw different dropout masks and
/// ITM negatives; rank 0 draws those of a single-process run.
fn step_seed(seed: u64, micro_step: u64, rank: usize) -> i64 {
    let mut h = blake3::Hasher::new();
    h.update(b"mplug.train.step");
    h.update(&seed.to_le_bytes());
    h.update(&micro_step.to_le_bytes());
    if rank > 0 {
        h.update(&(rank as u64).to_le_bytes());
    }
    let b = h.finalize();
    i64::from_le_bytes(b.as_bytes()[..8].try_into().unwrap_or([0; 8])) & i64::MAX
}

/// Samples per epoch on this process (after exclusions and mixing weights).
fn samples_per_epoch(index: &DatasetIndex, seed: u64, excluded: &HashSet<u64>) -> u64 {
    index
        .epoch_blocks(seed, 0, excluded)
        .iter()
        .map(|b| b.len as u64)
        .sum()
}

/// Runs (or resumes) a task's training, as one rank of `opts.group`.
pub fn train(cfg: TrainConfig, opts: &TrainOptions) -> Result<TrainSummary> {
    let group = opts.group.clone();
    let main = group.is_main();
    let simulated = cfg.train.simulate_ranks.max(1);
    if simulated > 1 && group.world() > 1 {
        return Err(Error::input(format!(
            "train.simulate_ranks {simulated} is for one process; this one is rank {} of {}",
            group.rank(),
            group.world()
        )));
    }
    // the data-parallel world the loader and the schedule see: real or simulated ranks
    let world = group.world() as u64 * simulated;
    // the ranks this process runs a micro-batch for, in turn
    let local_ranks: Vec<u64> = if simulated > 1 {
        (0..simulated).collect()
    } else {
        vec![group.rank() as u64]
    };
    fs_err::create_dir_all(&opts.out)?;
    let mut tr = Trainer::new(cfg.clone(), opts)?;
    let index = Arc::new(DatasetIndex::open_kind(&opts.data, tr.task.sample_kind())?);
    let mut excluded = match &opts.exclude {
        Some(f) => index.excluded_samples(f)?,
        None => HashSet::new(),
    };
    let split = match (&cfg.train.split, cfg.task) {
        (Some(s), _) => Some(s.clone()),
        (None, TaskName::Pretrain) => None,
        (None, _) => Some("train".to_string()),
    };
    if let Some(split) = &split {
        excluded.extend(index.samples_outside_split(split)?);
    }
    let seed = cfg.train.seed;
    let per_epoch = samples_per_epoch(&index, seed, &excluded);
    // every rank takes ⌈N / world⌉ samples (wrapping, as DistributedSampler pads)
    let iters_per_epoch = per_epoch.div_ceil(world) / cfg.batch_size as u64;
    if iters_per_epoch == 0 {
        return Err(Error::input(format!(
            "{per_epoch} samples make no batch of {} on each of {world} rank(s) (lower batch_size)",
            cfg.batch_size
        )));
    }
    if world > 1 && tr.task.momentum_store().is_some() {
        let global = cfg.batch_size as i64 * world as i64;
        if cfg.queue_size % global != 0 {
            return Err(Error::input_with_hint(
                format!(
                    "queue_size {} is not a multiple of the global batch {global} ({} × {world} ranks)",
                    cfg.queue_size, cfg.batch_size
                ),
                "the reference asserts queue_size % (batch_size × world size) == 0",
            ));
        }
    }
    let metrics_path = opts.out.join("metrics.jsonl");
    let eval_path = opts.out.join("eval.jsonl");
    let eval_index = if opts.eval_data.is_empty() {
        None
    } else {
        Some(Arc::new(DatasetIndex::open(&opts.eval_data)?))
    };
    if opts.resume {
        match checkpoint::latest(&opts.out)? {
            Some(dir) => tr.restore(&dir)?,
            None => {
                return Err(Error::input(format!(
                    "`{}` has no checkpoint to resume",
                    opts.out.display()
                )));
            }
        }
        if main {
            truncate_metrics(&metrics_path, tr.state.step)?;
            truncate_metrics(&eval_path, tr.state.step)?;
        }
    } else if main {
        fs_err::write(&metrics_path, "")?;
        if eval_index.is_some() {
            fs_err::write(&eval_path, "")?;
        }
    }
    let run_eval = |tr: &Trainer| -> Result<()> {
        let Some(index) = &eval_index else {
            return Ok(());
        };
        if cfg.task != TaskName::Pretrain || !main {
            return Ok(()); // fine-tuned models are scored by `mplug eval`
        }
        let m = crate::eval::pretrain_heldout::evaluate(
            &tr.model,
            index.clone(),
            cfg.image_res,
            cfg.max_tokens,
            seed,
            tr.device,
            tr.state.step,
        )?;
        let json = serde_json::to_string(&m).map_err(|e| Error::internal_caused("eval", e))?;
        let mut f = fs_err::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&eval_path)?;
        writeln!(f, "{json}")?;
        Ok(())
    };
    if tr.state.step == 0 {
        run_eval(&tr)?;
    }
    // fine-tuning: the task's metric after every checkpoint, and the best checkpoint
    let validation = match (&opts.validation, cfg.task) {
        (Some(spec), task) if task != TaskName::Pretrain && main => {
            let tokenizer = opts
                .tokenizer
                .clone()
                .ok_or_else(|| Error::input("evaluation needs the vocabulary (--vocab)"))?;
            let v = super::validation::Validation::open(
                spec,
                task,
                &TrainConfig::saved_path(&opts.out),
                tokenizer,
            )?;
            if !opts.resume {
                fs_err::write(&eval_path, "")?;
                let _ = fs_err::remove_file(opts.out.join("best.json"));
            }
            Some(v)
        }
        _ => None,
    };
    let mut best = super::validation::read_best(&opts.out)?;
    let validate = |tr: &Trainer,
                    checkpoint: &Path,
                    best: &mut Option<super::validation::BestCheckpoint>|
     -> Result<()> {
        let Some(v) = &validation else {
            return Ok(());
        };
        let Some((metric, value)) =
            v.evaluate(cfg.task, &tr.model, tr.task.classifier(), tr.device)?
        else {
            return Ok(());
        };
        let line = serde_json::json!({"step": tr.state.step, metric: value});
        let mut f = fs_err::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&eval_path)?;
        writeln!(f, "{line}")?;
        let rel = checkpoint
            .strip_prefix(&opts.out)
            .unwrap_or(checkpoint)
            .to_string_lossy()
            .replace('\\', "/");
        super::validation::update_best(
            &opts.out,
            best,
            super::validation::BestCheckpoint {
                metric: metric.to_string(),
                value,
                step: tr.state.step,
                checkpoint: rel,
            },
        )?;
        Ok(())
    };
    let schedule = CosineSchedule::new(&cfg.schedule, cfg.train.warmup_step_iters);
    let threads = match cfg.train.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let loader_cfg = LoaderConfig {
        seed,
        batch_size: cfg.batch_size,
        image_size: cfg.image_res,
        train: true,
        crop_scale: cfg.crop_scale,
        hflip: cfg.train.hflip,
        randaugment: cfg.train.randaugment,
        grounding: cfg.grounding_augment,
        max_tokens: cfg.max_tokens,
        mlm_probability: tr.task.mlm_probability(),
        threads,
        epochs: cfg.schedule.epochs,
        drop_last: true,
        world_size: world,
        ..LoaderConfig::default()
    };
    let use_autocast = cfg.train.bf16 && tr.device.is_cuda();
    if use_autocast {
        super::precision::use_bf16_autocast_on_cuda()?;
    }
    let excluded = Arc::new(excluded);
    let mut loaders = local_ranks
        .iter()
        .map(|&rank| {
            let cfg = LoaderConfig {
                rank,
                ..loader_cfg.clone()
            };
            Loader::start(index.clone(), excluded.clone(), cfg, tr.state.loader)
        })
        .collect::<Result<Vec<_>>>()?;
    let max_steps = cfg
        .train
        .max_steps
        .unwrap_or(iters_per_epoch * cfg.schedule.epochs / cfg.grad_accum_steps);
    let bar = crate::engine::progress::steps_bar(max_steps, "train", opts.quiet || !main);
    bar.set_position(tr.state.step);
    let mut metrics = fs_err::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&metrics_path)?;
    let mut last = None;
    let mut last_ckpt = None;
    let accum = cfg.grad_accum_steps;
    let mut interval = IntervalMetrics::default();
    let mut step_started = Instant::now();
    let mut step_samples = 0u64;
    let mut timer = PhaseTimer::new(tr.device, cfg.train.profile);
    if cfg.train.profile {
        super::host_reads::reset();
    }
    tr.opt.zero_grad();
    let end = opts.stop_at.map_or(max_steps, |s| s.min(max_steps));
    // each micro-batch's share of the step's mean gradient (DDP divides the all-reduced sum)
    let share = (accum * simulated) as f64;
    let (mut epoch, mut iter, mut lr1, mut lr2) = (0, 0, 0.0, 0.0);
    'steps: while tr.state.step < end {
        for (slot, &rank) in local_ranks.iter().enumerate() {
            let Some(batch) = loaders[slot].next_host() else {
                break 'steps;
            };
            let batch = batch?;
            epoch = batch.keys.first().map_or(0, |k| k.epoch);
            // positions are global (over ranks)
            iter = batch.keys.first().map_or(0, |k| k.position) / (cfg.batch_size as u64 * world);
            tch::manual_seed(step_seed(seed, tr.state.micro_step, rank as usize));
            lr1 = schedule.at(cfg.optimizer.lr1, epoch, iter);
            lr2 = schedule.at(cfg.optimizer.lr2, epoch, iter);
            timer.mark(Phase::Data);
            let ctx = StepContext {
                epoch,
                iter,
                iters_per_epoch,
                seed,
                sim_rank: if simulated > 1 { rank as usize } else { 0 },
            };
            let Trainer { model, task, .. } = &mut tr;
            let losses = tch::autocast(use_autocast, || task.losses(model, &batch, &cfg, ctx))?;
            timer.mark(Phase::Forward);
            (&losses.total / share).backward();
            timer.mark(Phase::Backward);
            // the loss and values stay on the device until the metrics line reads them
            interval.add_micro_batch(&losses, share);
            // global counts: every rank's samples
            tr.state.samples += batch.batch as u64 * group.world() as u64;
            tr.state.loader = batch.state_after;
            step_samples += batch.batch as u64;
        }
        tr.state.micro_step += 1;
        if !tr.state.micro_step.is_multiple_of(accum) {
            continue;
        }
        // DDP: the mean gradient over ranks, before clipping (clip_grad_norm_ sees the reduced one)
        tr.opt.average_gradients(group.as_ref())?;
        timer.mark(Phase::AllReduce);
        // the norm stays on the device until the metrics line reads it
        let grad_norm = tr
            .opt
            .clip_grad_norm_on_device(cfg.train.clip_grad_norm.unwrap_or(f64::INFINITY));
        tr.opt.step(lr1, lr2);
        if let Some((lo, hi)) = cfg.train.clamp_temp {
            // ALBEF's `temp.clamp_(0.001, 0.5)`; the mPLUG reference never clamps (off by default).
            tch::no_grad(|| {
                let mut t = tr.model.temp().shallow_clone();
                let _ = t.clamp_(lo, hi);
            });
        }
        tr.opt.zero_grad();
        timer.mark(Phase::Optimizer);
        tr.state.step += 1;
        interval.end_step(
            std::mem::take(&mut step_samples),
            step_started.elapsed().as_secs_f64(),
        );
        let log_due =
            tr.state.step.is_multiple_of(cfg.train.log_every) || tr.state.step == max_steps;
        let eval_due = (cfg.train.eval_every > 0
            && tr.state.step.is_multiple_of(cfg.train.eval_every))
            || tr.state.step == end;
        let checkpoint_due =
            tr.state.step.is_multiple_of(cfg.train.checkpoint_every) || tr.state.step == end;
        bar.set_position(tr.state.step);
        if !(log_due || eval_due || checkpoint_due) {
            interval.discard_step();
            step_started = Instant::now();
            continue;
        }
        // The one host read of the interval (every rank reads at the same steps).
        let step_reads = cfg.train.profile.then(super::host_reads::count);
        let read = interval.read(&grad_norm, tr.model.temp(), group.as_ref())?;
        if read.nonfinite {
            return Err(Error::internal(format!(
                "the loss was NaN or infinite at a step in {}..={} (epoch {epoch}, \
                 iter {iter}); the last checkpoint is intact (train.log_every: 1 checks every step)",
                tr.state.step + 1 - read.steps,
                tr.state.step
            )));
        }
        let line = MetricsLine {
            step: tr.state.step,
            epoch,
            iter,
            lr: lr1,
            lr_visual: lr2,
            loss: read.loss,
            values: read.values,
            grad_norm: read.grad_norm,
            temp: read.temp,
            samples_per_s: read.samples_per_s,
            loader_starved_pct: 100.0 * loaders[0].starved_fraction(),
            loader_queue_depth: loaders[0].queue_depth(),
            phases: timer.take_mean(read.steps).map(|mut p| {
                p.host_reads_per_step = step_reads.unwrap_or(0) as f64 / read.steps.max(1) as f64;
                p
            }),
        };
        if main && log_due {
            let json =
                serde_json::to_string(&line).map_err(|e| Error::internal_caused("metrics", e))?;
            writeln!(metrics, "{json}")?;
            metrics.flush()?;
        }
        bar.set_message(format!(
            "loss {:.4} lr {:.2e} {:.1} samples/s",
            line.loss, line.lr, line.samples_per_s
        ));
        last = Some(line);
        if eval_due {
            run_eval(&tr)?;
        }
        if main && checkpoint_due {
            let saved = tr.save(&opts.out)?;
            validate(&tr, &saved, &mut best)?;
            last_ckpt = Some(saved);
        }
        // The next step's clock starts here: evaluation, checkpoints and the read are not a
        // step's time, nor are their host reads.
        step_started = Instant::now();
        timer.restart();
        if cfg.train.profile {
            super::host_reads::reset();
        }
    }
    bar.finish_and_clear();
    if main && last_ckpt.is_none() && tr.state.step > 0 {
        let saved = tr.save(&opts.out)?;
        validate(&tr, &saved, &mut best)?;
        last_ckpt = Some(saved);
    }
    // every rank ends together (rank 0 may still be writing or validating the last checkpoint)
    group.barrier()?;
    Ok(TrainSummary {
        steps: tr.state.step,
        last,
        checkpoint: last_ckpt,
    })
}
