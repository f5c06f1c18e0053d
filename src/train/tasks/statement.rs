//! SNLI-VE and NLVR2 fine-tuning: the designed heads of `eval::statement_task` (mPLUG released
//! neither model; see docs/ARCHITECTURE.md) trained with cross-entropy over the classes, one sample
//! per statement. NLVR2 samples carry both images and the reference dataset's swap augmentation
//! (the loader swaps the pair with p = 0.5 and exchanges `left` ↔ `right` in the text); a
//! statement that names a side is never flipped.

use std::collections::BTreeMap;
use std::sync::Arc;

use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};
use crate::eval::statement_task::{StatementTask, statement_logits};
use crate::eval::task_model::TaskParts;
use crate::loader::HostBatch;
use crate::loader::sample::SampleKind;
use crate::model::MplugModel;
use crate::model::heads::ClassifierHead;
use crate::text::BertTokenizer;
use crate::train::config::TrainConfig;
use crate::train::task::{StepContext, TaskLosses, TrainTask, metric};

/// Statement classification fine-tuning.
pub struct StatementTrainTask {
    task: StatementTask,
    head: ClassifierHead,
    tokenizer: Arc<BertTokenizer>,
    device: Device,
}

impl StatementTrainTask {
    /// Builds `cls_head` in `vs` (PyTorch's Linear initialisation; an `--init` checkpoint that
    /// holds one overrides it).
    pub fn new(
        vs: &VarStore,
        cfg: &TrainConfig,
        task: StatementTask,
        tokenizer: Arc<BertTokenizer>,
        device: Device,
    ) -> Self {
        let head = ClassifierHead::new(
            vs.root() / "cls_head",
            task.head_inputs(),
            cfg.model.bert.hidden_size,
            task.classes(),
        );
        StatementTrainTask {
            task,
            head,
            tokenizer,
            device,
        }
    }
}

/// Cross-entropy of the logits against the labels, and the batch accuracy (a device [`metric`]).
pub fn statement_loss(logits: &Tensor, labels: &Tensor) -> (Tensor, Tensor) {
    let loss = logits.cross_entropy_for_logits(labels);
    let acc = logits
        .argmax(-1, false)
        .eq_tensor(labels)
        .to_kind(Kind::Double)
        .mean(Kind::Double);
    (loss, acc)
}

impl TrainTask for StatementTrainTask {
    fn sample_kind(&self) -> SampleKind {
        SampleKind::Statement {
            tokenizer: self.tokenizer.clone(),
            images: self.task.images() as usize,
        }
    }

    fn parts(&self) -> TaskParts {
        TaskParts::Classifier {
            inputs: self.task.head_inputs(),
            classes: self.task.classes(),
        }
    }

    fn classifier(&self) -> Option<&ClassifierHead> {
        Some(&self.head)
    }

    fn losses(
        &mut self,
        model: &MplugModel,
        batch: &HostBatch,
        _cfg: &TrainConfig,
        _ctx: StepContext,
    ) -> Result<TaskLosses> {
        let t = batch.to_tensors(self.device, true);
        let labels = t
            .labels
            .as_ref()
            .ok_or_else(|| Error::internal("a statement batch without labels"))?;
        let logits = statement_logits(
            model,
            &self.head,
            &t.images,
            &t.input_ids,
            &t.attention_mask,
            batch.images_per_sample as i64,
            true,
        );
        let (total, acc) = statement_loss(&logits, labels);
        let name = self.task.name().replace('-', "_");
        Ok(TaskLosses {
            values: BTreeMap::from([
                (format!("loss_{name}"), metric(&total)),
                (format!("{name}_acc"), acc),
            ]),
            total,
        })
    }
}
