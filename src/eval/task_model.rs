//! Loading a model for one evaluation task. A released task checkpoint holds only the parts its
//! task model has (`MPLUG` for VQA has no ITC/ITM heads and no MLM head, the caption model runs no
//! text encoder), so a load is strict about the parameters the task runs and lenient about the rest:
//! those keep their initialisation and never run.

use std::path::Path;

use tch::Device;
use tch::nn::VarStore;

use crate::error::{Error, Result};
use crate::model::heads::ClassifierHead;
use crate::model::weights::{LoadOptions, LoadReport, load_state_dict, read_weights};
use crate::model::{MplugConfig, MplugModel};

/// What a task runs of the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskParts {
    /// Visual encoder, text encoder, fusion, decoder (VQA, video QA).
    FusedDecoder,
    /// Visual encoder and decoder (captioning).
    VisualDecoder,
    /// Visual and text encoders, ITC projections, fusion, ITM head (retrieval).
    Retrieval,
    /// Visual and text encoders, fusion and a `cls_head` over `inputs` concatenated fused CLS
    /// vectors (1 for SNLI-VE, 2 for an NLVR2 pair) to `classes`.
    Classifier {
        /// Fused CLS vectors in.
        inputs: i64,
        /// Classes out.
        classes: i64,
    },
}

impl TaskParts {
    /// Whether the task runs parameter `key`.
    pub fn runs(self, key: &str) -> bool {
        let starts = |prefixes: &[&str]| prefixes.iter().any(|p| key.starts_with(p));
        if key == "temp" || starts(&["fusion_encoder.cls."]) {
            return false; // the ITC temperature is a training parameter; the MLM head pre-training's
        }
        let heads = starts(&["vision_proj.", "text_proj.", "itm_head."]);
        let text = starts(&["text_encoder.", "fusion_encoder."]);
        let decoder = starts(&["text_decoder."]);
        match self {
            TaskParts::FusedDecoder => !heads,
            TaskParts::VisualDecoder => !heads && !text,
            TaskParts::Retrieval => !decoder,
            TaskParts::Classifier { .. } => !heads && !decoder,
        }
    }
}

/// A model ready for evaluation, with what its load did.
pub struct TaskModel {
    /// Holds the parameters.
    pub vs: VarStore,
    /// The model.
    pub model: MplugModel,
    /// The load report (missing keys are only ones the task does not run).
    pub report: LoadReport,
    /// The classification head, for [`TaskParts::Classifier`].
    pub classifier: Option<ClassifierHead>,
}

/// Builds the model of `config` on `device` and loads `weights` (`.safetensors` or a PyTorch
/// checkpoint) for a task that runs `parts`.
pub fn load_task_model(
    config: &MplugConfig,
    weights: &Path,
    device: Device,
    parts: TaskParts,
) -> Result<TaskModel> {
    let vs = VarStore::new(device);
    let model = MplugModel::new(&vs.root(), config);
    let classifier = match parts {
        TaskParts::Classifier { inputs, classes } => Some(ClassifierHead::new(
            vs.root() / "cls_head",
            inputs,
            config.bert.hidden_size,
            classes,
        )),
        _ => None,
    };
    let (tensors, _skipped) = read_weights(weights)?;
    let opts = LoadOptions {
        allow_missing: true,
        allow_unexpected: true,
    };
    let report = load_state_dict(&vs, tensors, config, opts).map_err(|e| match e {
        Error::Input {
            message,
            hint,
            source,
        } => Error::Input {
            message: format!("`{}`: {message}", weights.display()),
            hint,
            source,
        },
        other => other,
    })?;
    let needed: Vec<&String> = report.missing.iter().filter(|k| parts.runs(k)).collect();
    if let Some(first) = needed.first() {
        return Err(Error::input_with_hint(
            format!(
                "`{}` lacks {} parameters this task runs, the first `{first}`",
                weights.display(),
                needed.len()
            ),
            "pass weights of this task (or of pre-training) made for this --config",
        ));
    }
    Ok(TaskModel {
        vs,
        model,
        report,
        classifier,
    })
}
