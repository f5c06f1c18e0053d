//! Training configuration: the keys of the original YAMLs — pre-training's (`batch_size`,
//! `queue_size`, `momentum`, `alpha`, `mlm_probability`, the `*_task` switches) and fine-tuning's
//! (`batch_size_train`, `batch_size_test`, `k_test`, `eos`, …), both with `optimizer: {lr1, lr2,
//! weight_decay}` and `schedular: {epochs, warmup_epochs, …}` — plus a `train:` section for what the
//! original scripts took from the command line or hard-coded (the task, seed, accumulation,
//! clipping, checkpoints). The YAML is parsed once into a tree; the model keys are read from it by
//! [`MplugConfig`], the rest here, and the task decides which keys it needs.
//!
//! Strict: an unknown key or a value of the wrong type is an error before any work starts (the model
//! part is parsed by [`MplugConfig`]). `--set key.sub=value` overrides are applied to the YAML tree
//! first, so they are checked the same way.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_yaml_ng::{Mapping, Value};

use crate::error::{Error, Result};
use crate::model::config::MplugConfig;

/// `optimizer:` (`create_two_optimizer`: lr1 for the BERT side, lr2 for the visual encoder).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizerConfig {
    /// Only `adamW`.
    pub opt: String,
    /// Ignored by the original two-optimizer code (kept for compatibility).
    #[serde(default)]
    pub lr: Option<f64>,
    /// Non-visual parameters.
    pub lr1: f64,
    /// Visual-encoder parameters.
    pub lr2: f64,
    /// Decoupled weight decay of the decay groups.
    pub weight_decay: f64,
}

/// `schedular:` (timm `CosineLRScheduler`, driven as the reference loops drive it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Only `cosine`.
    pub sched: String,
    /// Ignored by the original code (the groups' lr1/lr2 are the base rates).
    #[serde(default)]
    pub lr: Option<f64>,
    /// Epochs of the cosine (`t_initial`).
    pub epochs: u64,
    /// Floor of the cosine.
    pub min_lr: f64,
    /// Accepted, unused by the cosine schedule (as in the original).
    #[serde(default)]
    pub decay_rate: Option<f64>,
    /// Warm-up start.
    pub warmup_lr: f64,
    /// Warm-up length in scheduler steps of `train.warmup_step_iters` iterations each.
    pub warmup_epochs: u64,
    /// Accepted, unused (as in the original).
    #[serde(default)]
    pub cooldown_epochs: Option<u64>,
}

/// What a run trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum TaskName {
    /// ITC + ITM + MLM + PrefixLM (`mplug train`).
    #[default]
    Pretrain,
    /// VQA: weighted answer NLL through the decoder (`mplug finetune vqa`).
    Vqa,
    /// Captioning, cross-entropy stage (`mplug finetune caption`).
    Caption,
    /// Captioning, SCST stage: CIDEr-D reward over beam search (`mplug finetune caption-scst`).
    CaptionScst,
    /// Visual grounding: coordinate tokens with L1/GIoU-weighted CE (`mplug finetune grounding`).
    Grounding,
    /// Visual entailment, 3 classes (`mplug finetune snli-ve`).
    SnliVe,
    /// NLVR2, image pairs, 2 classes (`mplug finetune nlvr2`).
    Nlvr2,
    /// Image–text retrieval: ITC + ITM with the momentum model and queues (`mplug finetune
    /// retrieval`).
    Retrieval,
}

impl TaskName {
    /// The name on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskName::Pretrain => "pretrain",
            TaskName::Vqa => "vqa",
            TaskName::Caption => "caption",
            TaskName::CaptionScst => "caption-scst",
            TaskName::Grounding => "grounding",
            TaskName::SnliVe => "snli-ve",
            TaskName::Nlvr2 => "nlvr2",
            TaskName::Retrieval => "retrieval",
        }
    }

    /// The stem of the task's config files (`configs/{stem}_tiny.yaml`): the name, `_` for `-`.
    pub fn config_stem(self) -> String {
        self.as_str().replace('-', "_")
    }
}

/// `train:`, mplug's own keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainSection {
    /// The task (`mplug finetune TASK` sets it; `mplug train` is `pretrain`).
    pub task: TaskName,
    /// Seed of the loader, the initialisation, the queues and every per-step draw.
    pub seed: u64,
    /// Micro-batches per optimiser step [default: the reference script's `--accum_steps`: 4 for
    /// captioning, else 1].
    pub grad_accum_steps: Option<u64>,
    /// Global L2 gradient-norm clip (none when absent; the reference's DeepSpeed runs use 1.0).
    pub clip_grad_norm: Option<f64>,
    /// Checkpoint every N optimiser steps (and at the end).
    pub checkpoint_every: u64,
    /// Stop after this many optimiser steps (else after `schedular.epochs`).
    pub max_steps: Option<u64>,
    /// Iterations per warm-up scheduler step in epoch 0 (the reference loops: 100).
    pub warmup_step_iters: u64,
    /// Tokens per caption or question including `[CLS]` [default: 30 for pre-training, the
    /// reference's `max_input_length` 25 for VQA].
    pub max_tokens: Option<usize>,
    /// RandomResizedCrop scale range [default: (0.2, 1) for pre-training, (0.5, 1) fine-tuning].
    pub crop_scale: Option<(f64, f64)>,
    /// The split fine-tuning reads from its datasets [default: `train`; pre-training reads every
    /// row].
    pub split: Option<String>,
    /// RandomHorizontalFlip after the crop (the reference always flips; captions that name left
    /// and right, like the synthetic ones, are then wrong for half the samples).
    pub hflip: bool,
    /// The reference's RandomAugment(2, 7) after crop and flip.
    pub randaugment: bool,
    /// Loader worker threads (0 = all cores).
    pub threads: usize,
    /// bf16 autocast on CUDA (fp32 on CPU always).
    pub bf16: bool,
    /// Metrics line every N optimiser steps.
    pub log_every: u64,
    /// Clamp the ITC temperature into [lo, hi] after each step, as ALBEF does with (0.001, 0.5).
    /// Off by default: the mPLUG reference never clamps it (§2.1 QUIRK).
    pub clamp_temp: Option<(f64, f64)>,
    /// ITM never takes a token-identical caption as a negative (the reference masks only the same
    /// image index; off by default). For data whose captions repeat across images.
    pub itm_mask_same_text: bool,
    /// Held-out evaluation every N optimiser steps (0 = only at the start and end) when
    /// `mplug train --eval-data` is given.
    pub eval_every: u64,
    /// Write each step's wall time per phase to the metrics (`ms_data`, `ms_forward`,
    /// `ms_backward`, `ms_all_reduce`, `ms_optimizer`); on CUDA every phase boundary synchronises the device.
    pub profile: bool,
    /// Grounding: weigh each expression's coordinate CE by its own L1 and 1 − GIoU. Off by default:
    /// the reference's broadcasting makes the weights the batch's mean per coordinate (§3.5
    /// QUIRK), which this reproduces for parity.
    pub grounding_per_sample_weights: bool,
    /// Run an N-rank data-parallel job on this one process: each optimiser step takes the
    /// micro-batches of ranks 0..N in turn, with their seeds, and averages their gradients as the
    /// all-reduce does; ITC queues take every rank's features, the momentum model one update per
    /// micro-step. Continues an N-GPU run on one device with the same arithmetic (bit-exact with
    /// `grad_accum_steps: 1` and N a power of two). 1 = off.
    pub simulate_ranks: u64,
}

impl Default for TrainSection {
    fn default() -> Self {
        TrainSection {
            task: TaskName::Pretrain,
            seed: 42,
            grad_accum_steps: None,
            clip_grad_norm: None,
            checkpoint_every: 1000,
            max_steps: None,
            warmup_step_iters: 100,
            max_tokens: None,
            crop_scale: None,
            split: None,
            hflip: true,
            randaugment: true,
            threads: 0,
            bf16: true,
            log_every: 1,
            eval_every: 0,
            profile: false,
            clamp_temp: None,
            itm_mask_same_text: false,
            grounding_per_sample_weights: false,
            simulate_ranks: 1,
        }
    }
}

/// `dist:`, the process group of a data-parallel run (torchrun, Slurm, `mplug launch`). The
/// environment overrides it: `MPLUG_DIST_TIMEOUT`, `MPLUG_DIST_BACKEND`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DistSection {
    /// Seconds a rendezvous or collective may wait for the other ranks (torch's Gloo default:
    /// 1800).
    pub timeout_s: f64,
    /// `auto` (NCCL for CUDA when the build has it, else Gloo), `gloo` or `nccl`.
    pub backend: crate::train::dist::BackendChoice,
}

impl Default for DistSection {
    fn default() -> Self {
        DistSection {
            timeout_s: 1800.0,
            backend: crate::train::dist::BackendChoice::Auto,
        }
    }
}

fn default_true() -> bool {
    true
}

/// Every key a training YAML may hold besides the model's ([`MplugConfig`] reads those from the
/// same tree). Keys of the original files that the trainer does not use are accepted and ignored.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrainYaml {
    // training
    #[serde(default)]
    batch_size: Option<usize>,
    #[serde(default)]
    batch_size_train: Option<usize>,
    #[serde(default)]
    queue_size: Option<i64>,
    #[serde(default)]
    momentum: Option<f64>,
    #[serde(default = "default_alpha")]
    alpha: f64,
    #[serde(default = "default_true")]
    distill: bool,
    #[serde(default = "default_true")]
    warm_up: bool,
    #[serde(default)]
    mlm_probability: Option<f64>,
    #[serde(default = "default_true")]
    ita_task: bool,
    #[serde(default = "default_true")]
    itm_task: bool,
    #[serde(default = "default_true")]
    mlm_task: bool,
    #[serde(default = "default_true")]
    prefix_task: bool,
    optimizer: OptimizerConfig,
    schedular: ScheduleConfig,
    #[serde(default)]
    train: TrainSection,
    #[serde(default)]
    dist: DistSection,
    // original keys the trainer does not read (data comes from --data): accepted, ignored
    #[allow(dead_code)]
    #[serde(default)]
    train_file: Option<Value>,
    #[allow(dead_code)]
    #[serde(default)]
    image_root: Option<Value>,
    #[allow(dead_code)]
    #[serde(default)]
    read_local_data: Option<Value>,
    #[allow(dead_code)]
    #[serde(default)]
    mid_cross: Option<Value>,
    #[allow(dead_code)]
    #[serde(default)]
    concat_last_layer: Option<Value>,
    #[allow(dead_code)]
    #[serde(default)]
    merge_attention: Option<Value>,
    #[allow(dead_code)]
    #[serde(default)]
    text_encoder: Option<Value>,
    #[allow(dead_code)]
    #[serde(default)]
    text_decoder: Option<Value>,
    #[allow(dead_code)]
    #[serde(default)]
    use_checkpoint: Option<Value>,
    #[allow(dead_code)]
    #[serde(default)]
    clip_path: Option<Value>,
    // grounding_mplug_large.yaml: the transforms' switches, and data keys --data replaces
    #[serde(default)]
    aug_crop: Option<bool>,
    #[serde(default)]
    aug_scale: Option<bool>,
    #[serde(default)]
    aug_translate: Option<bool>,
    #[serde(default)]
    aug_blur: Option<bool>,
    #[allow(dead_code)]
    #[serde(default)]
    max_query_len: Option<Value>,
    #[allow(dead_code)]
    #[serde(default)]
    data_root: Option<Value>,
    #[allow(dead_code)]
    #[serde(default)]
    split_root: Option<Value>,
    #[allow(dead_code)]
    #[serde(default)]
    dataset: Option<Value>,
    // fine-tuning keys of the original task YAMLs that training does not read (evaluation reads
    // them through `mplug eval`'s settings): accepted, ignored
    #[allow(dead_code)]
    #[serde(default)]
    batch_size_test: Option<Value>,
    #[allow(dead_code)]
    #[serde(default)]
    k_test: Option<Value>,
    #[allow(dead_code)]
    #[serde(default)]
    eos: Option<Value>,
    #[allow(dead_code)]
    #[serde(default)]
    bos: Option<Value>,
    #[allow(dead_code)]
    #[serde(default)]
    beam_size: Option<Value>,
    #[allow(dead_code)]
    #[serde(default)]
    min_length: Option<Value>,
    #[allow(dead_code)]
    #[serde(default)]
    max_length: Option<Value>,
    #[allow(dead_code)]
    #[serde(default)]
    test_file: Option<Value>,
    #[allow(dead_code)]
    #[serde(default)]
    answer_list: Option<Value>,
    #[allow(dead_code)]
    #[serde(default)]
    vqa_root: Option<Value>,
    #[allow(dead_code)]
    #[serde(default)]
    vg_root: Option<Value>,
    #[allow(dead_code)]
    #[serde(default)]
    prompt: Option<Value>,
    #[allow(dead_code)]
    #[serde(default)]
    val_file: Option<Value>,
    #[allow(dead_code)]
    #[serde(default)]
    coco_root: Option<Value>,
}

fn default_alpha() -> f64 {
    0.4
}

/// The whole, validated training configuration.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// The model.
    pub model: MplugConfig,
    /// Warnings of the model parser.
    pub warnings: Vec<String>,
    /// What the run trains (`train.task`).
    pub task: TaskName,
    /// Training image side (`image_res`).
    pub image_res: u32,
    /// Samples per micro-batch on this process.
    pub batch_size: usize,
    /// ITC feature queue length.
    pub queue_size: i64,
    /// EMA factor of the momentum model.
    pub momentum: f64,
    /// Distillation weight.
    pub alpha: f64,
    /// Momentum distillation on/off.
    pub distill: bool,
    /// Ramp alpha over epoch 0.
    pub warm_up: bool,
    /// MLM selection probability.
    pub mlm_probability: f64,
    /// ITC on/off.
    pub ita_task: bool,
    /// ITM on/off.
    pub itm_task: bool,
    /// MLM on/off.
    pub mlm_task: bool,
    /// PrefixLM on/off.
    pub prefix_task: bool,
    /// Optimiser.
    pub optimizer: OptimizerConfig,
    /// Schedule.
    pub schedule: ScheduleConfig,
    /// mplug's keys.
    pub train: TrainSection,
    /// The process group's settings.
    pub dist: DistSection,
    /// Tokens per caption or question including `[CLS]` (`train.max_tokens` or the task's default).
    pub max_tokens: usize,
    /// RandomResizedCrop scale range (`train.crop_scale` or the task's default).
    pub crop_scale: (f64, f64),
    /// The grounding transforms' `aug_crop` / `aug_scale` / `aug_translate` (default on).
    pub grounding_augment: crate::loader::grounding_transform::GroundingAugment,
    /// Micro-batches per optimiser step (`train.grad_accum_steps` or the task's default).
    pub grad_accum_steps: u64,
    /// The effective YAML (after overrides), saved with every checkpoint.
    pub yaml: String,
}

/// Applies `key.sub=value` (value parsed as YAML) to a YAML mapping.
pub fn apply_override(root: &mut Value, spec: &str) -> Result<()> {
    let (key, value) = spec.split_once('=').ok_or_else(|| {
        Error::input_with_hint(
            format!("override `{spec}` has no `=`"),
            "write e.g. --set schedular.epochs=2",
        )
    })?;
    let value: Value = serde_yaml_ng::from_str(value)
        .map_err(|e| Error::input_caused(format!("override `{spec}`: bad value"), e))?;
    let mut node = root;
    let parts: Vec<&str> = key.split('.').collect();
    for (k, part) in parts.iter().enumerate() {
        let map = node
            .as_mapping_mut()
            .ok_or_else(|| Error::input(format!("override `{spec}`: `{part}` is not a section")))?;
        let name = Value::String(part.to_string());
        if k + 1 == parts.len() {
            map.insert(name, value);
            return Ok(());
        }
        node = map
            .entry(name)
            .or_insert_with(|| Value::Mapping(Mapping::new()));
    }
    Ok(())
}

/// The file's text and its tree with `overrides` applied.
fn read_tree(path: &Path, overrides: &[String]) -> Result<(String, Value)> {
    let text = fs_err::read_to_string(path)?;
    let mut tree: Value = serde_yaml_ng::from_str(&text)
        .map_err(|e| crate::model::config::yaml_error("training config", path, e))?;
    for o in overrides {
        apply_override(&mut tree, o)?;
    }
    Ok((text, tree))
}

/// `train.task` of a YAML mapping when it names a task, read before the keys are checked (for
/// the hint of an error).
fn declared_task(tree: &Mapping) -> Option<TaskName> {
    serde_yaml_ng::from_value(tree.get("train")?.get("task")?.clone()).ok()
}

fn to_yaml(tree: &Value) -> Result<String> {
    serde_yaml_ng::to_string(tree)
        .map_err(|e| Error::internal_caused("re-serialising the config", e))
}

impl TrainConfig {
    /// Reads `path`, applies `overrides`, checks every key and type.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self> {
        let (text, tree) = read_tree(path, overrides)?;
        Self::from_tree(tree, &text, path)
    }

    /// Checks `path` + `overrides`, then makes the run directory self-contained: the BERT JSON is
    /// copied to `run_dir/config_bert.json` and the effective YAML (naming it) is written to
    /// `run_dir/config.yaml`, which `--resume` reads.
    pub fn prepare_run(path: &Path, overrides: &[String], run_dir: &Path) -> Result<Self> {
        let (text, mut tree) = read_tree(path, overrides)?;
        let checked = Self::from_tree(tree.clone(), &text, path)?;
        let written = tree
            .get("bert_config")
            .and_then(|v| v.as_str())
            .ok_or_else(|| Error::input(format!("`{}` has no bert_config", path.display())))?
            .to_string();
        let bert = crate::model::config::resolve_beside(path, &written)?;
        fs_err::create_dir_all(run_dir)?;
        fs_err::copy(&bert, run_dir.join("config_bert.json"))?;
        apply_override(&mut tree, "bert_config=config_bert.json")?;
        let yaml = to_yaml(&tree)?;
        let saved = Self::saved_path(run_dir);
        fs_err::write(&saved, &yaml)?;
        // the saved copy names the copied BERT JSON: read back as --resume will
        let cfg = Self::from_tree(tree, &yaml, &saved)?;
        debug_assert_eq!(cfg.model, checked.model);
        Ok(cfg)
    }

    /// The configuration a run directory was started with.
    pub fn of_run(run_dir: &Path) -> Result<Self> {
        let saved = Self::saved_path(run_dir);
        if !saved.is_file() {
            return Err(Error::input(format!(
                "`{}` is not a run directory (no config.yaml)",
                run_dir.display()
            )));
        }
        let yaml = fs_err::read_to_string(&saved)?;
        Self::from_yaml_str(&yaml, &saved)
    }

    /// Parses effective YAML text; `path` names it and anchors `bert_config`.
    pub fn from_yaml_str(yaml: &str, path: &Path) -> Result<Self> {
        let tree = serde_yaml_ng::from_str(yaml)
            .map_err(|e| crate::model::config::yaml_error("training config", path, e))?;
        Self::from_tree(tree, yaml, path)
    }

    /// The configuration of a parsed YAML tree (`text` is what it was parsed from, for the lines
    /// of errors): the model's keys go to [`MplugConfig`], the rest are checked here, once.
    fn from_tree(tree: Value, text: &str, path: &Path) -> Result<Self> {
        let Value::Mapping(tree) = tree else {
            return Err(Error::input(format!(
                "`{}` is not a YAML mapping of training keys",
                path.display()
            )));
        };
        let yaml = to_yaml(&Value::Mapping(tree.clone()))?;
        let declared = declared_task(&tree);
        let (model_keys, train_keys) = crate::model::config::split_model_keys(tree);
        let raw: RawTrainYaml = crate::model::config::from_tree(
            "training config",
            path,
            text,
            Value::Mapping(train_keys),
        )
        .map_err(|e| {
            // the task's own tiny config lists its keys (`train.task`, set by mplug finetune)
            let task = declared.unwrap_or_default().config_stem();
            e.with_hint(format!(
                "a {task} config takes the keys of configs/{task}_tiny.yaml"
            ))
        })?;
        let (model, warnings) = MplugConfig::from_model_keys(model_keys, path, text)?;
        let image_res = model.vision.image_res;
        let task = raw.train.task;
        let bad = |m: String| Error::input(format!("`{}`: {m}", path.display()));
        let need = |name: &str| {
            bad(format!(
                "{} needs `{name}` (see configs/{}_tiny.yaml)",
                task.as_str(),
                task.config_stem()
            ))
        };
        let (batch_size, queue_size, momentum, mlm_probability) = match task {
            TaskName::Retrieval => (
                raw.batch_size_train
                    .ok_or_else(|| need("batch_size_train"))?,
                raw.queue_size.ok_or_else(|| need("queue_size"))?,
                raw.momentum.ok_or_else(|| need("momentum"))?,
                0.0,
            ),
            TaskName::Pretrain => (
                raw.batch_size.ok_or_else(|| need("batch_size"))?,
                raw.queue_size.ok_or_else(|| need("queue_size"))?,
                raw.momentum.ok_or_else(|| need("momentum"))?,
                raw.mlm_probability.ok_or_else(|| need("mlm_probability"))?,
            ),
            TaskName::Vqa
            | TaskName::Caption
            | TaskName::CaptionScst
            | TaskName::Grounding
            | TaskName::SnliVe
            | TaskName::Nlvr2 => {
                if raw.queue_size.is_some() || raw.mlm_probability.is_some() {
                    return Err(bad(format!(
                        "this is a pre-training config (queue_size, mlm_probability); \
                         {0} takes a {0} config such as configs/{1}_tiny.yaml",
                        task.as_str(),
                        task.config_stem()
                    )));
                }
                (
                    raw.batch_size_train
                        .ok_or_else(|| need("batch_size_train"))?,
                    0,
                    raw.momentum.unwrap_or(0.995),
                    0.0,
                )
            }
        };
        // the reference scripts' text limits, crops and accumulation
        let (max_tokens, crop_scale, accum) = match task {
            TaskName::Pretrain => (30, (0.2, 1.0), 1),
            TaskName::Vqa => (25, (0.5, 1.0), 1),
            TaskName::Caption => (25, (0.5, 1.0), 4),
            // caption_mplug_scst.py takes --accum_steps but never accumulates
            TaskName::CaptionScst => (25, (0.5, 1.0), 1),
            // max_query_len 20; the grounding transforms crop by their own rules; the script's
            // accum_steps 4 only wastes batches (zero_grad before every backward), so 1
            TaskName::Grounding => (20, (0.5, 1.0), 1),
            // re_train_dataset: pre_caption 30 words; the tokenizer's max_length 30
            TaskName::Retrieval => (30, (0.5, 1.0), 1),
            // ALBEF's VE/NLVR datasets: pre_caption 30 words at ingest, no tokenizer truncation
            TaskName::SnliVe | TaskName::Nlvr2 => {
                (model.bert.max_position_embeddings as usize, (0.5, 1.0), 1)
            }
        };
        if raw.aug_blur == Some(true) {
            return Err(bad(
                "aug_blur: true (GaussianBlur) is not implemented; the reference's grounding \
                 configs set it false"
                    .to_string(),
            ));
        }
        let cfg = TrainConfig {
            model,
            warnings,
            task,
            image_res: image_res as u32,
            batch_size,
            queue_size,
            momentum,
            alpha: raw.alpha,
            distill: raw.distill,
            warm_up: raw.warm_up,
            mlm_probability,
            max_tokens: raw.train.max_tokens.unwrap_or(max_tokens),
            crop_scale: raw.train.crop_scale.unwrap_or(crop_scale),
            grounding_augment: crate::loader::grounding_transform::GroundingAugment {
                crop: raw.aug_crop.unwrap_or(true),
                scale: raw.aug_scale.unwrap_or(true),
                translate: raw.aug_translate.unwrap_or(true),
            },
            grad_accum_steps: raw.train.grad_accum_steps.unwrap_or(accum),
            // retrieval fine-tuning is ITC + ITM (retrieval_img_mplug.py), whatever the switches say
            ita_task: raw.ita_task || task == TaskName::Retrieval,
            itm_task: raw.itm_task || task == TaskName::Retrieval,
            mlm_task: raw.mlm_task && task == TaskName::Pretrain,
            prefix_task: raw.prefix_task && task == TaskName::Pretrain,
            optimizer: raw.optimizer,
            schedule: raw.schedular,
            train: raw.train,
            dist: raw.dist,
            yaml: yaml.to_string(),
        };
        cfg.validate(path)?;
        Ok(cfg)
    }

    fn validate(&self, path: &Path) -> Result<()> {
        let bad = |m: String| Err(Error::input(format!("`{}`: {m}", path.display())));
        if self.optimizer.opt.to_lowercase() != "adamw" {
            return bad(format!(
                "optimizer.opt `{}`: only adamW",
                self.optimizer.opt
            ));
        }
        if self.schedule.sched != "cosine" {
            return bad(format!(
                "schedular.sched `{}`: only cosine",
                self.schedule.sched
            ));
        }
        if self.batch_size == 0 {
            return bad("batch_size must be at least 1".into());
        }
        if matches!(self.task, TaskName::Pretrain | TaskName::Retrieval)
            && self.ita_task
            && (self.queue_size <= 0 || self.queue_size % self.batch_size as i64 != 0)
        {
            // The reference asserts queue_size % global batch == 0.
            return bad(format!(
                "queue_size {} must be a positive multiple of batch_size {}",
                self.queue_size, self.batch_size
            ));
        }
        if !(0.0..=1.0).contains(&self.momentum) || !(0.0..=1.0).contains(&self.alpha) {
            return bad("momentum and alpha must lie in [0, 1]".into());
        }
        if !(0.0..1.0).contains(&self.mlm_probability) {
            return bad("mlm_probability must lie in [0, 1)".into());
        }
        if self.grad_accum_steps == 0
            || self.train.checkpoint_every == 0
            || self.train.simulate_ranks == 0
        {
            return bad("train.grad_accum_steps, train.checkpoint_every and train.simulate_ranks must be ≥ 1".into());
        }
        if !(self.dist.timeout_s > 0.0 && self.dist.timeout_s.is_finite()) {
            return bad(format!(
                "dist.timeout_s {} must be a positive number of seconds",
                self.dist.timeout_s
            ));
        }
        if self.max_tokens < 2 {
            return bad("train.max_tokens must be at least 2 ([CLS] and a token)".into());
        }
        if self.task == TaskName::Pretrain
            && !(self.ita_task || self.itm_task || self.mlm_task || self.prefix_task)
        {
            return bad("every task is off (ita_task, itm_task, mlm_task, prefix_task)".into());
        }
        Ok(())
    }

    /// The effective config of a run directory.
    pub fn saved_path(run_dir: &Path) -> PathBuf {
        run_dir.join("config.yaml")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_create_and_replace_nested_keys() {
        let mut v: Value = serde_yaml_ng::from_str("a: 1\nb: {c: 2}\n").unwrap();
        apply_override(&mut v, "b.c=3").unwrap();
        apply_override(&mut v, "d.e=[1, 2]").unwrap();
        apply_override(&mut v, "a=x").unwrap();
        let want: Value = serde_yaml_ng::from_str("a: x\nb: {c: 3}\nd: {e: [1, 2]}\n").unwrap();
        assert_eq!(v, want);
        assert!(apply_override(&mut v, "novalue").is_err());
        assert!(apply_override(&mut v, "a.b=1").is_err(), "a is a scalar");
    }

    fn tiny() -> (String, PathBuf) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/pretrain_tiny.yaml");
        (std::fs::read_to_string(&path).unwrap(), path)
    }

    #[test]
    fn one_tree_gives_the_model_the_training_keys_and_the_dist_section() {
        let (text, path) = tiny();
        let cfg = TrainConfig::from_yaml_str(&text, &path).unwrap();
        assert_eq!(cfg.dist, DistSection::default());
        assert_eq!(cfg.dist.timeout_s, 1800.0);
        assert_eq!((cfg.image_res, cfg.model.vision.image_res), (32, 32));
        let text = format!("{text}\ndist:\n  timeout_s: 90\n  backend: gloo\n")
            .replace("image_res: 32", "image_res: 64");
        let cfg = TrainConfig::from_yaml_str(&text, &path).unwrap();
        assert_eq!(cfg.dist.timeout_s, 90.0);
        assert_eq!(cfg.dist.backend, crate::train::dist::BackendChoice::Gloo);
        assert_eq!((cfg.image_res, cfg.model.vision.image_res), (64, 64));
        // the saved effective YAML is read back to the same configuration
        let again = TrainConfig::from_yaml_str(&cfg.yaml, &path).unwrap();
        assert_eq!((again.dist, again.model), (cfg.dist, cfg.model));
    }

    #[test]
    fn errors_name_the_key_path_and_its_line() {
        let (text, path) = tiny();
        let lines = text.lines().count();
        for (extra, key, line) in [
            ("dist:\n  backend: mpi\n", "`dist.backend`", lines + 2),
            ("dist:\n  timeout: 5\n", "`dist.timeout`", lines + 2),
            ("bogus_key: 1\n", "bogus_key", lines + 2),
        ] {
            let text = format!("{text}\n{extra}");
            let err = TrainConfig::from_yaml_str(&text, &path).unwrap_err();
            let msg = format!("{err}: {}", std::error::Error::source(&err).unwrap());
            assert!(msg.contains(key), "{extra}: {msg}");
            assert!(msg.contains(&format!("line {line}")), "{extra}: {msg}");
        }
        // a model key, typed by the model's parser, on its own line of the file
        let line = 1 + text
            .lines()
            .position(|l| l.starts_with("embed_dim:"))
            .unwrap();
        let bad = text.replace("embed_dim: 16", "embed_dim: wide");
        let err = TrainConfig::from_yaml_str(&bad, &path).unwrap_err();
        let msg = format!("{err}: {}", std::error::Error::source(&err).unwrap());
        assert!(
            msg.contains("`embed_dim`") && msg.contains(&format!("line {line}")),
            "{msg}"
        );
        let bad = format!("{text}\ndist:\n  timeout_s: 0\n");
        let err = TrainConfig::from_yaml_str(&bad, &path).unwrap_err();
        assert!(err.to_string().contains("dist.timeout_s"), "{err}");
    }
}
