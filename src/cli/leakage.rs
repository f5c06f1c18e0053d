//! `mplug leakage`: evaluation images that also appear in training data.

use std::path::PathBuf;

use clap::Args;

use crate::leakage::{EVAL_SPLITS, exclusion_list, find_leaks, read_image_keys, summarize};
use crate::shards::catalog::discover_datasets;
use crate::shards::commit::write_atomic;

/// Report images of an evaluation split found in a training split (any dataset, also its own).
///
/// Images are compared by the pixel_dhash column (a 64-bit difference hash of the decoded pixels,
/// so re-encoded and resized copies match) within --max-distance bits; flat images (almost no
/// edges) only by their exact pixel hash. Only the hash columns are read, never the pixels.
/// Evaluation splits: val, test, testA, testB, test-dev, dev, test1, test2, minival.
///
/// --exclusions writes the training rows to skip (dataset, split, id, reason) as JSON, the list
/// the loader honours. Exit code 0 either way; the report says what was found.
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct LeakageArgs {
    /// Dataset directory, or a folder searched (4 levels deep) for datasets; repeatable.
    #[arg(long, value_name = "ROOT", required = true, num_args = 1..)]
    data: Vec<PathBuf>,
    /// Largest Hamming distance between dHashes that counts as the same image (0-7).
    #[arg(long, value_name = "BITS", default_value_t = 3, value_parser = clap::value_parser!(u32).range(0..=7))]
    max_distance: u32,
    /// Write the exclusion list (training rows that copy an evaluation image) to this file.
    #[arg(long, value_name = "FILE")]
    exclusions: Option<PathBuf>,
    /// Print every match as one JSON object per line instead of the summary.
    #[arg(long)]
    json: bool,
}

pub fn run(args: LeakageArgs) -> anyhow::Result<()> {
    let datasets = discover_datasets(&args.data)?;
    let mut keys = Vec::new();
    for d in &datasets {
        let k = read_image_keys(d)?;
        if k.is_empty() && d.manifest.totals.samples_written > 0 {
            eprintln!(
                "note: {} ({}) has no pixel_dhash column; skipped",
                d.manifest.name, d.manifest.schema
            );
        }
        keys.extend(k);
    }
    let eval = keys
        .iter()
        .filter(|k| EVAL_SPLITS.contains(&k.split.as_str()))
        .count();
    let leaks = find_leaks(&keys, args.max_distance);
    if args.json {
        for l in &leaks {
            println!("{}", serde_json::to_string(l)?);
        }
    } else {
        println!(
            "{} datasets, {} images ({} in evaluation splits), max distance {} bits",
            datasets.len(),
            keys.len(),
            eval,
            args.max_distance
        );
        let summary = summarize(&leaks);
        if summary.is_empty() {
            println!("no evaluation image found in a training split");
        } else {
            println!(
                "{:<32} {:<32} {:>8}",
                "evaluation", "found in training", "images"
            );
            for ((e, t), n) in &summary {
                println!("{e:<32} {t:<32} {n:>8}");
            }
        }
    }
    if let Some(path) = &args.exclusions {
        let list = exclusion_list(&leaks, args.max_distance);
        let mut bytes = serde_json::to_vec_pretty(&list)?;
        bytes.push(b'\n');
        write_atomic(path, &bytes)?;
        eprintln!(
            "wrote {} training rows to exclude to {}",
            list.entries.len(),
            path.display()
        );
    }
    Ok(())
}
