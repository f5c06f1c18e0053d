//! Atomic file commits: write to a temporary name in the same directory, fsync, rename.
//!
//! A reader (or a rerun after `kill -9`) therefore sees either the old file, no file, or the complete
//! new file, never a torn one. Temporary names end in `.tmp` and are removed by the next run.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::Result;

/// The temporary path used while `path` is being written.
pub fn temp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path);
    let mut f = fs_err::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    rename_durable(&tmp, path)
}

/// Renames `from` to `to` and fsyncs the directory so the rename survives a crash.
pub fn rename_durable(from: &Path, to: &Path) -> Result<()> {
    fs_err::rename(from, to)?;
    if let Some(dir) = to.parent() {
        // Directory fsync is best-effort: not every file system supports it.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}
