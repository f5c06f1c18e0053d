//! Atomic training checkpoints: `RUN_DIR/checkpoints/step-NNNNNNNN/` holds `model.safetensors`,
//! `momentum.safetensors` (tasks with a momentum model), `optimizer.safetensors` (AdamW moments and step counts, the ITC queues)
//! and `state.json` (step, epoch, loader state, seed). The directory is written under a temporary
//! name, synced, then renamed, and `RUN_DIR/latest` is replaced by rename: a crash at any point
//! leaves the previous checkpoint as `latest`, complete.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::error::{Error, Result};
use crate::loader::LoaderState;

/// `state.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// `mplug.train_state`.
    pub format: String,
    /// 1.
    pub version: u32,
    /// Optimiser steps taken.
    pub step: u64,
    /// Micro-batches consumed.
    pub micro_step: u64,
    /// Where the loader continues.
    pub loader: LoaderState,
    /// Samples consumed.
    pub samples: u64,
    /// blake3 of the effective config YAML (a resume with another config is refused).
    pub config_blake3: String,
}

/// Names of the files in a checkpoint directory.
pub const MODEL_FILE: &str = "model.safetensors";
/// The momentum model.
pub const MOMENTUM_FILE: &str = "momentum.safetensors";
/// Optimiser moments and queues.
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// [`TrainState`].
pub const STATE_FILE: &str = "state.json";

/// Fault injection for the crash test: when `MPLUG_CRASH_DURING_CHECKPOINT` names this step, the
/// process aborts (like `kill -9`) after writing the weights, before the rename.
const CRASH_ENV: &str = "MPLUG_CRASH_DURING_CHECKPOINT";

/// A checkpoint's parts, to write.
pub struct CheckpointParts<'a> {
    /// Model variables.
    pub model: &'a tch::nn::VarStore,
    /// Momentum variables (tasks that keep a momentum model).
    pub momentum: Option<&'a tch::nn::VarStore>,
    /// Optimiser and queue tensors.
    pub optimizer: Vec<(String, Tensor)>,
    /// The state.
    pub state: TrainState,
}

fn sync_dir(dir: &Path) -> Result<()> {
    fs_err::File::open(dir)?.sync_all()?;
    Ok(())
}

fn sync_file(p: &Path) -> Result<()> {
    fs_err::OpenOptions::new().read(true).open(p)?.sync_all()?;
    Ok(())
}

/// The directory of step `step`.
pub fn step_dir(run_dir: &Path, step: u64) -> PathBuf {
    run_dir.join("checkpoints").join(format!("step-{step:08}"))
}

/// Writes a checkpoint atomically and points `latest` at it.
pub fn write(run_dir: &Path, parts: CheckpointParts<'_>) -> Result<PathBuf> {
    let step = parts.state.step;
    let final_dir = step_dir(run_dir, step);
    let root = run_dir.join("checkpoints");
    fs_err::create_dir_all(&root)?;
    let tmp = root.join(format!(".step-{step:08}.tmp-{}", std::process::id()));
    if tmp.exists() {
        fs_err::remove_dir_all(&tmp)?;
    }
    fs_err::create_dir_all(&tmp)?;
    parts.model.save(tmp.join(MODEL_FILE))?;
    if let Some(m) = parts.momentum {
        m.save(tmp.join(MOMENTUM_FILE))?;
    }
    if std::env::var(CRASH_ENV).ok().as_deref() == Some(&step.to_string()) {
        std::process::abort();
    }
    Tensor::write_safetensors(&parts.optimizer, tmp.join(OPTIMIZER_FILE))?;
    let json = serde_json::to_string_pretty(&parts.state)
        .map_err(|e| Error::internal_caused("train state", e))?;
    fs_err::write(tmp.join(STATE_FILE), json)?;
    for f in [MODEL_FILE, MOMENTUM_FILE, OPTIMIZER_FILE, STATE_FILE] {
        if f != MOMENTUM_FILE || parts.momentum.is_some() {
            sync_file(&tmp.join(f))?;
        }
    }
    sync_dir(&tmp)?;
    if final_dir.exists() {
        fs_err::remove_dir_all(&final_dir)?;
    }
    fs_err::rename(&tmp, &final_dir)?;
    sync_dir(&root)?;
    let latest_tmp = run_dir.join(".latest.tmp");
    fs_err::write(&latest_tmp, format!("checkpoints/step-{step:08}\n"))?;
    sync_file(&latest_tmp)?;
    fs_err::rename(&latest_tmp, run_dir.join("latest"))?;
    sync_dir(run_dir)?;
    Ok(final_dir)
}

/// The directory `latest` names, if any; leftovers of interrupted writes are removed.
pub fn latest(run_dir: &Path) -> Result<Option<PathBuf>> {
    let root = run_dir.join("checkpoints");
    if root.is_dir() {
        for e in fs_err::read_dir(&root)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(".step-") && name.contains(".tmp-") {
                fs_err::remove_dir_all(e.path())?;
            }
        }
    }
    let pointer = run_dir.join("latest");
    if !pointer.is_file() {
        return Ok(None);
    }
    let rel = fs_err::read_to_string(&pointer)?;
    // `latest` only ever names `checkpoints/step-N` of its own run: anything else (another run's
    // directory, `..`, an absolute path) is refused rather than resumed from.
    let own = rel
        .trim()
        .strip_prefix("checkpoints/step-")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    if !own {
        return Err(Error::format(format!(
            "`{}` names `{}`, which is not a checkpoint of this run (checkpoints/step-N)",
            pointer.display(),
            rel.trim()
        )));
    }
    let dir = run_dir.join(rel.trim());
    if !dir.join(STATE_FILE).is_file() {
        return Err(Error::format(format!(
            "`{}` names `{}`, which is not a complete checkpoint",
            pointer.display(),
            dir.display()
        )));
    }
    Ok(Some(dir))
}

/// Reads `state.json` of a checkpoint directory.
pub fn read_state(dir: &Path) -> Result<TrainState> {
    let text = fs_err::read_to_string(dir.join(STATE_FILE))?;
    let st: TrainState = serde_json::from_str(&text)
        .map_err(|e| Error::format_caused(format!("`{}`", dir.join(STATE_FILE).display()), e))?;
    if st.format != "mplug.train_state" || st.version != 1 {
        return Err(Error::format(format!(
            "`{}` is not an mplug.train_state v1",
            dir.display()
        )));
    }
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_never_leaves_its_run() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        let other = dir.path().join("other/checkpoints/step-00000002");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join(STATE_FILE), "{}").unwrap();
        std::fs::create_dir_all(&run).unwrap();
        for bad in [
            "../other/checkpoints/step-00000002",
            other.to_str().unwrap(),
            "checkpoints/step-2/../../../other/checkpoints/step-00000002",
        ] {
            std::fs::write(run.join("latest"), format!("{bad}\n")).unwrap();
            let err = latest(&run).unwrap_err().to_string();
            assert!(err.contains("not a checkpoint of this run"), "{bad}: {err}");
        }
        let own = run.join("checkpoints/step-00000002");
        std::fs::create_dir_all(&own).unwrap();
        std::fs::write(own.join(STATE_FILE), "{}").unwrap();
        std::fs::write(run.join("latest"), "checkpoints/step-00000002\n").unwrap();
        assert_eq!(latest(&run).unwrap(), Some(own));
    }
}
