//! Evaluation during fine-tuning and the best-checkpoint rule: after every checkpoint the task's
//! metric on a held-out split (`mplug finetune --eval-data DIR --eval-split val`), computed by the
//! same code as `mplug eval` — VQA accuracy (official vqaEval), caption CIDEr-D, retrieval
//! r_mean, SNLI-VE / NLVR2 accuracy, grounding acc@0.5 — one line per evaluation in `RUN/eval.jsonl`, and `RUN/best.json` naming the
//! checkpoint with the highest value so far (the reference keeps `checkpoint_best.pth` the same way).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::Device;

use super::config::TaskName;
use crate::error::{Error, Result};
use crate::eval::batches::ItemSelection;
use crate::eval::retrieval_task::{self, RetrievalKind};
use crate::eval::settings::{CAPTION_DEFAULTS, EvalSettings, NO_GENERATION, VQA_DEFAULTS};
use crate::eval::split::EvalSplit;
use crate::eval::statement_task::StatementTask;
use crate::eval::vqa_accuracy::VqaEvalMode;
use crate::eval::{caption, caption_task, grounding_task, statement_task, vqa, vqa_task};
use crate::model::MplugModel;
use crate::model::heads::ClassifierHead;
use crate::text::BertTokenizer;

/// What to evaluate during a fine-tuning run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ValidationSpec {
    /// Dataset directory (of the task's schema).
    pub data: PathBuf,
    /// Its split.
    pub split: String,
    /// Only the first N items.
    pub limit: Option<u64>,
}

/// The evaluation keys (`batch_size_test`, decoding) of the run's config.
pub fn settings_for(task: TaskName, config: &Path) -> Result<EvalSettings> {
    let defaults = match task {
        TaskName::Vqa => VQA_DEFAULTS,
        TaskName::Caption | TaskName::CaptionScst => CAPTION_DEFAULTS,
        _ => NO_GENERATION,
    };
    EvalSettings::from_yaml(config, defaults)
}

/// The schema a task's evaluation reads.
pub fn schema_of(task: TaskName) -> &'static str {
    match task {
        TaskName::Vqa => "image_qa.v1",
        TaskName::SnliVe | TaskName::Nlvr2 => "image_statement.v1",
        TaskName::Grounding => "image_grounding.v1",
        _ => "image_text.v1",
    }
}

/// A held-out split ready to evaluate.
pub struct Validation {
    /// The split.
    pub split: EvalSplit,
    /// Batch size and decoding.
    pub settings: EvalSettings,
    /// Decodes generated answers and captions.
    pub tokenizer: std::sync::Arc<BertTokenizer>,
    /// Only the first N items.
    pub limit: Option<u64>,
}

impl Validation {
    /// Opens `spec`'s split for `task` (an error lists the splits there are) with the evaluation
    /// keys of `config`.
    pub fn open(
        spec: &ValidationSpec,
        task: TaskName,
        config: &Path,
        tokenizer: std::sync::Arc<BertTokenizer>,
    ) -> Result<Self> {
        Ok(Validation {
            split: EvalSplit::open(&spec.data, schema_of(task), &spec.split)?,
            settings: settings_for(task, config)?,
            tokenizer,
            limit: spec.limit,
        })
    }

    /// One evaluation: the metric's name and value (higher is better); `None` when the split
    /// has no ground truth.
    pub fn evaluate(
        &self,
        task: TaskName,
        model: &MplugModel,
        head: Option<&ClassifierHead>,
        device: Device,
    ) -> Result<Option<(&'static str, f64)>> {
        evaluate(task, model, head, self, device)
    }
}

fn evaluate(
    task: TaskName,
    model: &MplugModel,
    head: Option<&ClassifierHead>,
    v: &Validation,
    device: Device,
) -> Result<Option<(&'static str, f64)>> {
    let (split, settings, tokenizer) = (&v.split, &v.settings, v.tokenizer.as_ref());
    let selection = ItemSelection {
        rank: 0,
        world_size: 1,
        limit: v.limit,
    };
    let quiet = &|_| {};
    match task {
        TaskName::Vqa => {
            let answering = vqa_task::Answering::Generate(tokenizer);
            let preds = vqa_task::run(model, split, selection, settings, answering, device, quiet)?;
            let truth: Option<Vec<vqa::VqaGroundTruth>> =
                preds.iter().map(|q| q.item.truth.clone()).collect();
            let Some(truth) = truth.filter(|t| !t.is_empty()) else {
                return Ok(None);
            };
            let answered: Vec<(String, String)> = preds
                .iter()
                .map(|q| (q.item.question_id.clone(), q.answer.clone()))
                .collect();
            let r = vqa::score(&truth, &answered, VqaEvalMode::Official)?;
            Ok(Some(("vqa_accuracy", r.overall)))
        }
        TaskName::Caption | TaskName::CaptionScst => {
            let preds =
                caption_task::run(model, tokenizer, split, selection, settings, device, quiet)?;
            let report = caption::score_generated(
                preds.iter().map(|q| {
                    (
                        q.item.image_id.as_str(),
                        q.caption.as_str(),
                        &q.item.references[..],
                    )
                }),
                None,
            )?;
            Ok(report.and_then(|r| r.metrics.get("CIDEr").map(|&c| ("cider", c))))
        }
        TaskName::SnliVe | TaskName::Nlvr2 => {
            let which = if task == TaskName::SnliVe {
                StatementTask::SnliVe
            } else {
                StatementTask::Nlvr2
            };
            let head = head.ok_or_else(|| Error::internal("a statement task without its head"))?;
            let preds = statement_task::run(
                which, model, head, split, selection, settings, device, quiet,
            )?;
            let correct = preds
                .iter()
                .filter(|p| p.predicted == p.item.label as i64)
                .count();
            Ok(Some((
                "accuracy",
                100.0 * correct as f64 / preds.len().max(1) as f64,
            )))
        }
        TaskName::Retrieval => {
            let out = retrieval_task::run(
                model,
                split,
                RetrievalKind::Image,
                selection,
                settings,
                device,
                &crate::train::dist::SingleProcess,
                quiet,
            )?;
            Ok(Some(("r_mean", out.recall.r_mean)))
        }
        TaskName::Grounding => {
            let preds =
                grounding_task::run(model, split, selection, settings, device, quiet, None)?;
            let correct = preds.iter().filter(|p| p.iou >= 0.5).count();
            Ok(Some((
                "accuracy",
                100.0 * correct as f64 / preds.len().max(1) as f64,
            )))
        }
        TaskName::Pretrain => Ok(None),
    }
}

/// `RUN/best.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BestCheckpoint {
    /// The metric.
    pub metric: String,
    /// Its value there.
    pub value: f64,
    /// The optimiser step.
    pub step: u64,
    /// The checkpoint directory, relative to the run directory.
    pub checkpoint: String,
}

/// The best checkpoint so far, if any.
pub fn read_best(run_dir: &Path) -> Result<Option<BestCheckpoint>> {
    let path = run_dir.join("best.json");
    if !path.is_file() {
        return Ok(None);
    }
    let text = fs_err::read_to_string(&path)?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Error::format_caused(format!("`{}`", path.display()), e))
}

/// Records `candidate` as the best when it beats `current` (ties keep the earlier checkpoint).
pub fn update_best(
    run_dir: &Path,
    current: &mut Option<BestCheckpoint>,
    candidate: BestCheckpoint,
) -> Result<bool> {
    if current.as_ref().is_some_and(|b| b.value >= candidate.value) {
        return Ok(false);
    }
    let json = serde_json::to_vec_pretty(&candidate)
        .map_err(|e| Error::internal_caused("best.json", e))?;
    crate::shards::commit::write_atomic(&run_dir.join("best.json"), &json)?;
    *current = Some(candidate);
    Ok(true)
}
