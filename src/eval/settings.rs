//! The evaluation keys of a task YAML (`configs/vqa_mplug_base.yaml`, …): the original configs'
//! `batch_size_test` and `k_test`, and the decoding settings the original scripts take as argparse
//! flags (`beam_size`, `min_length`, `max_length`), with the scripts' defaults per task.

use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::model::generate::GenerateConfig;

/// Evaluation settings read from a task YAML (other keys belong to the model or training).
#[derive(Debug, Clone, Copy)]
pub struct EvalSettings {
    /// Items per forward.
    pub batch_size: usize,
    /// Candidates re-ranked (retrieval, answer ranking).
    pub k_test: usize,
    /// Decoding.
    pub generate: GenerateConfig,
}

#[derive(Debug, Default, Deserialize)]
struct RawEvalKeys {
    batch_size_test: Option<usize>,
    k_test: Option<usize>,
    beam_size: Option<i64>,
    min_length: Option<i64>,
    max_length: Option<i64>,
}

/// The reference scripts' decoding defaults for a generating task.
#[derive(Debug, Clone, Copy)]
pub struct TaskDefaults {
    /// `--beam_size`.
    pub beam_size: i64,
    /// `--min_length`.
    pub min_length: i64,
    /// `--max_length`.
    pub max_length: i64,
}

/// `vqa_mplug.py`: beam 5, min 1, max 10.
pub const VQA_DEFAULTS: TaskDefaults = TaskDefaults {
    beam_size: 5,
    min_length: 1,
    max_length: 10,
};

/// `caption_mplug.py`: beam 5, min 8, max 25.
pub const CAPTION_DEFAULTS: TaskDefaults = TaskDefaults {
    beam_size: 5,
    min_length: 8,
    max_length: 25,
};

/// Retrieval generates nothing; its settings are `batch_size_test` and `k_test`.
pub const NO_GENERATION: TaskDefaults = TaskDefaults {
    beam_size: 1,
    min_length: 1,
    max_length: 1,
};

impl EvalSettings {
    /// Reads the evaluation keys of `path`, filling absent ones from `defaults`.
    pub fn from_yaml(path: &Path, defaults: TaskDefaults) -> Result<Self> {
        Self::from_yaml_text(&fs_err::read_to_string(path)?, path, defaults)
    }

    /// [`Self::from_yaml`] of a YAML text read from `path`.
    pub fn from_yaml_text(text: &str, path: &Path, defaults: TaskDefaults) -> Result<Self> {
        let raw: RawEvalKeys = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(text)
            .and_then(serde_yaml_ng::from_value)
            .map_err(|e| Error::config("task config", path, None, e))?;
        let s = EvalSettings {
            batch_size: raw.batch_size_test.unwrap_or(16),
            k_test: raw.k_test.unwrap_or(128),
            generate: GenerateConfig {
                beam_size: raw.beam_size.unwrap_or(defaults.beam_size),
                min_length: raw.min_length.unwrap_or(defaults.min_length),
                max_length: raw.max_length.unwrap_or(defaults.max_length),
                num_return: 1,
                kv_cache: true,
            },
        };
        let bad = |m: &str| Error::input(format!("`{}`: {m}", path.display()));
        if s.batch_size == 0 {
            return Err(bad("batch_size_test must be at least 1"));
        }
        if s.generate.beam_size < 1 {
            return Err(bad("beam_size must be at least 1"));
        }
        if s.generate.max_length < 1 || s.generate.min_length > s.generate.max_length {
            return Err(bad("need 1 <= max_length and min_length <= max_length"));
        }
        Ok(s)
    }
}
