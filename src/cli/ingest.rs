//! `mplug ingest <dataset>`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::engine::cpu_time::process_cpu_seconds;
use crate::engine::pipeline::PipelineSpec;
use crate::ingest::image_text::ImageTextProcessor;
use crate::ingest::{IngestJob, IngestOutcome, default_name};
use crate::shards::Manifest;
use crate::sources::ImageRoot;
use crate::sources::coco::CocoSource;
use crate::stages::PixelCodec;
use crate::text::BertTokenizer;
use crate::text::tokenizer::default_vocab_path;

#[derive(Debug, Subcommand)]
pub enum IngestCommand {
    /// COCO captions: official captions_*.json, Karpathy dataset_coco.json, or ALBEF/mPLUG json lists.
    ///
    /// Writes one row per image (pixels stored once) with all its captions and their BERT WordPiece
    /// ids to OUT/shards/*.parquet, then OUT/manifest.json. Bad inputs (missing, empty, corrupt or
    /// oversized images, paths escaping --images, duplicate ids, empty or non-string captions) are
    /// recorded in the manifest's `rejects` and the run goes on, unless --strict.
    ///
    /// Output is identical for any --threads. Rerunning after an interruption rebuilds the same bytes;
    /// rerunning on a complete dataset with the same inputs and settings does nothing.
    #[command(verbatim_doc_comment)]
    Coco(CocoArgs),
}

/// Options every image ingest shares.
#[derive(Debug, Args)]
pub struct CommonIngestArgs {
    /// Output dataset directory (gets manifest.json and shards/).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// BERT uncased vocab.txt [default: $MPLUG_VOCAB, else ~/.cache/mplug/bert-base-uncased/vocab.txt]
    #[arg(long, value_name = "FILE")]
    vocab: Option<PathBuf>,
    /// Worker threads (the output does not depend on it) [default: all cores]
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Pipeline file to start from [default: the built-in pipelines/<dataset>.toml]
    #[arg(long, value_name = "FILE")]
    pipeline: Option<PathBuf>,
    /// Dataset name in the manifest and in `mplug sql` [default: the --out directory's name]
    #[arg(long)]
    name: Option<String>,
    /// Close a shard once it holds this much row data (e.g. 256MiB).
    #[arg(long, value_name = "BYTES", value_parser = super::parse_bytes)]
    shard_size: Option<u64>,
    /// Close a row group once it holds this much row data (e.g. 16MiB).
    #[arg(long, value_name = "BYTES", value_parser = super::parse_bytes)]
    row_group_size: Option<u64>,
    /// Longest stored side in pixels; larger images are downscaled, never upscaled (0 = keep size).
    #[arg(long, value_name = "PX")]
    max_side: Option<u32>,
    /// Pixel storage: baseline JPEG or raw uint8 HWC.
    #[arg(long, value_enum)]
    codec: Option<PixelCodec>,
    /// JPEG quality of stored images (1-100).
    #[arg(long, value_name = "Q", value_parser = clap::value_parser!(u8).range(1..=100))]
    jpeg_quality: Option<u8>,
    /// Reject images whose header declares more pixels than this (decompression-bomb guard).
    #[arg(long, value_name = "N")]
    max_pixels: Option<u64>,
    /// Make any rejected input fatal (exit 1, no manifest written).
    #[arg(long)]
    strict: bool,
    /// Replace an existing dataset in --out built from other inputs or settings.
    #[arg(long)]
    force: bool,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Debug, Args)]
pub struct CocoArgs {
    /// Annotation files (any mix of the three layouts; the layout is detected per file).
    #[arg(long, value_name = "FILE", num_args = 1.., required = true)]
    annotations: Vec<PathBuf>,
    /// Image root: annotation image paths are relative to it.
    #[arg(long, value_name = "DIR")]
    images: PathBuf,
    /// Put every image in this split instead of the one named by the file or the Karpathy field.
    #[arg(long)]
    split: Option<String>,
    #[command(flatten)]
    common: CommonIngestArgs,
}

fn resolve_pipeline(builtin: &str, a: &CommonIngestArgs) -> anyhow::Result<PipelineSpec> {
    let mut p = match &a.pipeline {
        Some(path) => PipelineSpec::load(path)?,
        None => PipelineSpec::builtin(builtin)?,
    };
    if let Some(v) = a.shard_size {
        p.shards.shard_size_bytes = v;
    }
    if let Some(v) = a.row_group_size {
        p.shards.row_group_bytes = v;
    }
    if let Some(v) = a.max_side {
        p.image.max_side = v;
    }
    if let Some(v) = a.codec {
        p.image.codec = v;
    }
    if let Some(v) = a.jpeg_quality {
        p.image.jpeg_quality = v;
    }
    if let Some(v) = a.max_pixels {
        p.image.max_pixels = v;
    }
    Ok(p)
}

fn load_tokenizer(a: &CommonIngestArgs) -> anyhow::Result<BertTokenizer> {
    let path = a
        .vocab
        .clone()
        .or_else(default_vocab_path)
        .context("no --vocab given and no HOME to look in")?;
    Ok(BertTokenizer::from_vocab_file(&path)?)
}

pub fn run(cmd: IngestCommand) -> anyhow::Result<()> {
    match cmd {
        IngestCommand::Coco(args) => {
            let a = &args.common;
            let pipeline = resolve_pipeline("coco", a)?;
            let tokenizer = load_tokenizer(a)?;
            let images = ImageRoot::open(&args.images)?;
            let source = CocoSource {
                annotation_files: args.annotations.clone(),
                image_root: images.path().to_path_buf(),
                split_override: args.split.clone(),
            };
            let processor = ImageTextProcessor::new(images, &pipeline, &tokenizer);
            let job = IngestJob {
                name: a.name.clone().unwrap_or_else(|| default_name(&a.out)),
                out_dir: a.out.clone(),
                pipeline,
                source_options: serde_json::json!({ "split_override": args.split }),
                tokenizer: &tokenizer,
                threads: a
                    .threads
                    .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
                strict: a.strict,
                force: a.force,
                quiet: a.quiet,
            };
            let started = std::time::Instant::now();
            let cpu_start = process_cpu_seconds();
            match job.run(&source, &processor)? {
                IngestOutcome::UpToDate(m) => {
                    println!(
                        "{}: already up to date (same inputs and settings); nothing to do",
                        a.out.display()
                    );
                    print_summary(&m, None);
                }
                IngestOutcome::Written(m) => {
                    let cpu = cpu_start.zip(process_cpu_seconds()).map(|(a, b)| b - a);
                    print_summary(&m, Some((started.elapsed(), cpu)));
                }
            }
            Ok(())
        }
    }
}

/// Prints the human summary of a dataset.
/// `timing` is (wall time, CPU seconds of the job) when the dataset was just written.
pub fn print_summary(m: &Manifest, timing: Option<(std::time::Duration, Option<f64>)>) {
    let t = &m.totals;
    println!("dataset   {}  ({})", m.name, m.schema);
    println!(
        "images    {} written, {} rejected",
        t.images_written, t.images_rejected
    );
    println!(
        "captions  {} written, {} rejected",
        t.captions_written, t.captions_rejected
    );
    println!(
        "shards    {} files, {:.1} MiB",
        t.shards,
        t.shard_bytes as f64 / (1 << 20) as f64
    );
    if let Some((wall, cpu)) = timing {
        let secs = wall.as_secs_f64().max(1e-9);
        println!(
            "time      {:.2} s ({:.1} images/s)",
            secs,
            t.images_seen as f64 / secs
        );
        if let Some(cpu) = cpu.filter(|c| *c > 0.0) {
            println!(
                "cpu       {:.2} s ({:.1} images per CPU-second)",
                cpu,
                t.images_seen as f64 / cpu
            );
        }
    }
    println!("hash      blake3:{}", m.dataset_blake3);
    if !m.rejects.is_empty() {
        println!(
            "rejects (first {} of {}):",
            m.rejects.len().min(10),
            m.rejects.len()
        );
        for r in m.rejects.iter().take(10) {
            println!("  - {r}");
        }
    }
}
