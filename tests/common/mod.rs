//! Helpers shared by the integration test binaries: the binary under test, the repository, and the
//! project venv's Python and the BERT vocab that scripts/setup.sh installs (the tests' oracles).
#![allow(dead_code)] // each test binary uses a subset

use std::path::PathBuf;
use std::process::{Command, Output};

/// The `mplug` binary built for this test run.
pub fn mplug() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mplug"))
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `$MPLUG_PYTHON`, else `.venv/bin/python`; panics with the fix when missing.
pub fn python() -> PathBuf {
    let p = std::env::var_os("MPLUG_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv/bin/python"));
    assert!(
        p.exists(),
        "{} not found: run scripts/setup.sh (or scripts/test.sh) first",
        p.display()
    );
    p
}

/// `$MPLUG_VOCAB`, else the set-up's install location; panics with the fix when missing.
pub fn vocab() -> PathBuf {
    let p = std::env::var_os("MPLUG_VOCAB")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/mplug/bert-base-uncased/vocab.txt")
        });
    assert!(
        p.exists(),
        "vocab {} not found: run scripts/setup.sh first",
        p.display()
    );
    p
}

/// Asserts success and returns stdout.
pub fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "command failed ({:?}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
pub mod http;
