//! `mplug finetune TASK`: a downstream recipe of the reference on the shared training loop.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};

use crate::loader::index::DatasetInput;
use crate::text::BertTokenizer;
use crate::text::tokenizer::default_vocab_path;
use crate::train::config::TaskName;
use crate::train::validation::ValidationSpec;
use crate::train::{TrainConfig, TrainOptions};

/// The tasks `mplug finetune` trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FinetuneTask {
    /// VQA v2 (+ VG-QA): weighted answer NLL through the decoder (`vqa_mplug.py`).
    Vqa,
    /// COCO captioning, cross-entropy stage: `[CLS] caption [SEP]` from the visual tokens
    /// (`caption_mplug.py`).
    Caption,
    /// COCO captioning, SCST stage: beam search with gradients, CIDEr-D reward against the image's
    /// captions, baseline = mean over its beams (`caption_mplug_scst.py`); start from a caption
    /// checkpoint.
    CaptionScst,
    /// Visual grounding (RefCOCO family): four coordinate tokens after `[unused339]`, CE weighted
    /// by L1 and 1 − GIoU of the argmax box, TransVG's training transforms (`grounding_mplug.py`).
    Grounding,
    /// SNLI-VE: the fused CLS → `cls_head` (3 classes; ALBEF's design, mPLUG released none).
    SnliVe,
    /// NLVR2: each image fused with the statement, both CLS → `cls_head` (2 classes), with the
    /// reference dataset's pair swap (and `left` ↔ `right`).
    Nlvr2,
    /// Image–text retrieval: ITC + ITM with the momentum model, queues and distillation
    /// (`retrieval_img_mplug.py`), one sample per caption.
    Retrieval,
}

impl FinetuneTask {
    fn name(self) -> TaskName {
        match self {
            FinetuneTask::Vqa => TaskName::Vqa,
            FinetuneTask::Caption => TaskName::Caption,
            FinetuneTask::CaptionScst => TaskName::CaptionScst,
            FinetuneTask::Grounding => TaskName::Grounding,
            FinetuneTask::SnliVe => TaskName::SnliVe,
            FinetuneTask::Nlvr2 => TaskName::Nlvr2,
            FinetuneTask::Retrieval => TaskName::Retrieval,
        }
    }
}

/// Fine-tune a pre-trained mPLUG on a downstream task, as the reference's scripts do.
///
///   mplug finetune vqa --config configs/vqa_tiny.yaml --init runs/tiny/checkpoints/step-00000030 \
///                      --data data/vqa --out runs/vqa --device cpu
///   mplug finetune --resume runs/vqa         # continues exactly after the last checkpoint
///
/// The task YAMLs of the original release work as they are (configs/vqa_mplug_base.yaml): the
/// model keys, `batch_size_train`, `optimizer`, `schedular`; mplug's own keys go in `train:`
/// (seed, accumulation, clipping, `split` [default: train], `max_tokens`, …). The run directory
/// is laid out as `mplug train`'s (config.yaml, data.json, metrics.jsonl, checkpoints/); evaluate
/// a checkpoint with `mplug eval vqa --weights RUN/checkpoints/step-N/model.safetensors`.
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct FinetuneArgs {
    /// The task.
    #[arg(value_enum, required_unless_present = "resume")]
    task: Option<FinetuneTask>,
    /// Task YAML (original keys; see configs/vqa_tiny.yaml).
    #[arg(long, required_unless_present = "resume")]
    config: Option<PathBuf>,
    /// Weights to start from: a released `.pth`, an `mplug convert` output, an `mplug train`
    /// checkpoint directory or its `model.safetensors`.
    #[arg(long, value_name = "CKPT", required_unless_present = "resume")]
    init: Option<PathBuf>,
    /// Ingested datasets of the task's schema; `DIR=WEIGHT` sets a mixing weight.
    #[arg(long, value_name = "DIR[=W]", num_args = 1.., required_unless_present = "resume")]
    data: Vec<String>,
    /// Run directory (created).
    #[arg(long, required_unless_present = "resume")]
    out: Option<PathBuf>,
    /// Continue the run in this directory from its latest checkpoint.
    #[arg(long, value_name = "RUN_DIR", conflicts_with_all = ["task", "config", "init", "data", "out", "set", "eval_data"])]
    resume: Option<PathBuf>,
    /// Override a config key, e.g. `--set schedular.epochs=2` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// A held-out dataset of the task's schema: after every checkpoint the task's metric on
    /// `--eval-split` goes to RUN/eval.jsonl, and RUN/best.json names the best checkpoint (VQA
    /// accuracy, caption CIDEr-D, retrieval r_mean, SNLI-VE/NLVR2 accuracy, grounding acc@0.5).
    #[arg(long, value_name = "DIR")]
    eval_data: Option<PathBuf>,
    /// The held-out split.
    #[arg(long, default_value = "val", value_name = "NAME")]
    eval_split: String,
    /// Evaluate only the first N items of the held-out split.
    #[arg(long, value_name = "N")]
    eval_limit: Option<u64>,
    /// BERT uncased vocab.txt [default: $MPLUG_VOCAB, else ~/.cache/mplug/bert-base-uncased/vocab.txt]
    #[arg(long, env = "MPLUG_VOCAB")]
    vocab: Option<PathBuf>,
    #[command(flatten)]
    run: super::train::RunControl,
}

/// `data.json` of a fine-tuning run.
#[derive(Debug, Serialize, Deserialize)]
struct FinetuneData {
    data: Vec<(PathBuf, f64)>,
    init: PathBuf,
    vocab: PathBuf,
    #[serde(default)]
    validation: Option<ValidationSpec>,
}

/// The `train.task` a YAML declares, if any.
fn declared_task(path: &std::path::Path) -> anyhow::Result<Option<String>> {
    let text = fs_err::read_to_string(path)?;
    let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text)
        .with_context(|| format!("`{}` is not YAML", path.display()))?;
    Ok(v.get("train")
        .and_then(|t| t.get("task"))
        .and_then(|t| t.as_str())
        .map(String::from))
}

/// Runs `mplug finetune`.
pub fn run(a: FinetuneArgs) -> anyhow::Result<()> {
    let device = super::train::rank_device(&a.run.device)?;
    let fresh_dir = a.out.as_ref().is_some_and(|o| !o.exists());
    let (group, cfg, out, data, init, vocab, validation, resume) = match &a.resume {
        Some(run) => {
            let cfg = TrainConfig::of_run(run)?;
            let group = crate::train::dist::join_from_env(device, &cfg.dist)?;
            anyhow::ensure!(
                cfg.task != TaskName::Pretrain,
                "`{}` is a pre-training run: continue it with mplug train --resume",
                run.display()
            );
            let text = fs_err::read_to_string(run.join("data.json"))?;
            let d: FinetuneData = serde_json::from_str(&text)
                .with_context(|| format!("reading {}", run.join("data.json").display()))?;
            let data = d
                .data
                .into_iter()
                .map(|(path, weight)| DatasetInput { path, weight })
                .collect();
            (
                group,
                cfg,
                run.clone(),
                data,
                d.init,
                d.vocab,
                d.validation,
                true,
            )
        }
        None => {
            let (Some(task), Some(config), Some(init), Some(out)) =
                (a.task, &a.config, &a.init, &a.out)
            else {
                anyhow::bail!(
                    "TASK, --config, --init, --data and --out are needed (or --resume RUN_DIR)"
                );
            };
            let overridden = a
                .set
                .iter()
                .rev()
                .find_map(|s| s.strip_prefix("train.task="))
                .map(|v| v.trim().to_string());
            if let Some(declared) = overridden.or(declared_task(config)?)
                && declared != task.name().as_str()
            {
                return Err(crate::error::Error::input(format!(
                    "`{}` is a `{declared}` config (train.task), not `{}`",
                    config.display(),
                    task.name().as_str()
                ))
                .into());
            }
            let data = super::train::new_run_inputs(out, a.run.force, &a.data)?;
            anyhow::ensure!(init.exists(), "--init `{}` does not exist", init.display());
            let vocab = a
                .vocab
                .clone()
                .or_else(default_vocab_path)
                .context("no --vocab given and no HOME to look in")?;
            let mut set = a.set.clone();
            set.push(format!("train.task={}", task.name().as_str()));
            // Every key and type is checked before the run directory is touched.
            let checked = TrainConfig::load(config, &set)?;
            let group = crate::train::dist::join_from_env(device, &checked.dist)?;
            let validation = a.eval_data.as_ref().map(|d| ValidationSpec {
                data: d.clone(),
                split: a.eval_split.clone(),
                limit: a.eval_limit,
            });
            let cfg = super::train::prepared_by_rank0(group.as_ref(), out, || {
                if a.run.force && out.exists() {
                    super::train::clear_run(out)?;
                }
                let cfg = TrainConfig::prepare_run(config, &set, out)?;
                let fd = FinetuneData {
                    data: data.iter().map(|d| (d.path.clone(), d.weight)).collect(),
                    init: init.clone(),
                    vocab: vocab.clone(),
                    validation: validation.clone(),
                };
                fs_err::write(out.join("data.json"), serde_json::to_string_pretty(&fd)?)?;
                Ok(cfg)
            })?;
            (
                group,
                cfg,
                out.clone(),
                data,
                init.clone(),
                vocab,
                validation,
                false,
            )
        }
    };
    for w in &cfg.warnings {
        eprintln!("warning: {w}");
    }
    let tokenizer = Arc::new(BertTokenizer::from_vocab_file(&vocab)?);
    let opts = TrainOptions {
        data,
        out: out.clone(),
        resume,
        device,
        quiet: a.run.quiet,
        exclude: None,
        stop_at: a.run.stop_at_step,
        eval_data: Vec::new(),
        init: Some(init),
        tokenizer: Some(tokenizer),
        validation,
        group: group.clone(),
    };
    match crate::train::train(cfg, &opts) {
        Ok(summary) => {
            if group.is_main() {
                super::train::print_summary(&summary);
            }
            Ok(())
        }
        Err(e) => {
            // A run refused before its first checkpoint (data of another schema, --init of
            // another size) leaves no directory behind it.
            if fresh_dir && group.is_main() && !out.join("latest").exists() {
                let _ = fs_err::remove_dir_all(&out);
            }
            Err(e.into())
        }
    }
}
