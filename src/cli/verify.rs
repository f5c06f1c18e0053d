//! `mplug verify DIR`.

use std::path::PathBuf;

use clap::Args;

use crate::shards::verify::verify_dataset;

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Dataset directory (holds manifest.json).
    dir: PathBuf,
}

pub fn run(args: VerifyArgs) -> anyhow::Result<()> {
    let report = verify_dataset(&args.dir)?;
    if report.is_ok() {
        println!(
            "ok: {} shards, {} rows match {}/manifest.json",
            report.shards_checked,
            report.rows,
            args.dir.display()
        );
        return Ok(());
    }
    for p in &report.problems {
        eprintln!("mismatch: {p}");
    }
    Err(crate::Error::format(format!(
        "{} problem(s) in `{}`; first: {}",
        report.problems.len(),
        args.dir.display(),
        report.problems[0]
    ))
    .into())
}
