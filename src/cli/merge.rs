//! `mplug merge`.

use std::path::PathBuf;

use clap::Args;

/// Merge the parts of a split ingest (`mplug ingest … --part I/N`) into one dataset
///
/// The merged dataset holds the same rows in the same order as a one-machine ingest of the same
/// inputs, and the same `rows_blake3` (a content hash of the rows in order that does not depend on
/// where shards were cut). Shards are hard-linked where the file system allows, else copied; the
/// parts stay valid. Every part is verified first; a part missing, given twice, changed after its
/// manifest, or built from other inputs, settings or mplug version stops the merge (exit 2).
///
///   mplug ingest coco ... --part 0/3 --out parts/0    # on three machines, or a Slurm job array
///   mplug merge parts/0 parts/1 parts/2 --out data/coco
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct MergeArgs {
    /// The part directories (any order).
    #[arg(required = true, value_name = "PART_DIR")]
    parts: Vec<PathBuf>,
    /// Output dataset directory (new or empty).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Dataset name [default: the --out directory's name].
    #[arg(long)]
    name: Option<String>,
}

pub fn run(a: MergeArgs) -> anyhow::Result<()> {
    let name = a
        .name
        .clone()
        .unwrap_or_else(|| crate::ingest::default_name(&a.out));
    let done = crate::shards::merge::merge(&a.parts, &a.out, &name)?;
    let m = &done.manifest;
    println!(
        "merged {} parts into {}: {} rows in {} shards ({} hard-linked), {} rejects",
        a.parts.len(),
        a.out.display(),
        m.totals.samples_written,
        m.totals.shards,
        done.linked,
        m.rejects.len()
    );
    println!("  rows_blake3 {}", m.rows_blake3.as_deref().unwrap_or("-"));
    Ok(())
}
