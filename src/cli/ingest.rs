//! `mplug ingest <dataset>`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::engine::cpu_time::process_cpu_seconds;
use crate::ingest::datasets::ingest;
use crate::ingest::pipeline::PipelineSpec;
use crate::ingest::plan::{IngestPlan, Media};
use crate::ingest::{IngestOutcome, default_name};
use crate::shards::Manifest;
use crate::stages::{ImageOptions, PixelCodec};
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
    Coco(ImageIngestArgs),
    /// Visual Genome: region_descriptions.json (v1.0/v1.2) as captions, or question_answers.json as QA.
    ///
    /// Regions become image_text.v1 captions; QA becomes image_qa.v1 (answer weight 0.5, as the
    /// reference); image_data.json gives the image paths.
    /// --images is the folder holding VG_100K/ and VG_100K_2/. A run reads either region or QA
    /// files (they go to different schemas), chosen by the file names.
    #[command(verbatim_doc_comment)]
    Vg(ImageIngestArgs),
    /// Flickr30K: results_20130124.token, Karpathy dataset_flickr30k.json or ALBEF flickr30k_*.json.
    #[command(name = "flickr30k")]
    Flickr30k(ImageIngestArgs),
    /// VQA v2: official questions + annotations json, or ALBEF/mPLUG vqa json lists (image_qa.v1).
    ///
    /// One row per image with its questions, the distinct human answers and their weights as the
    /// reference computes them (count/10 for vqa, 0.5 for vg). Visual Genome QA joins as extra
    /// training data: pass question_answers.json (+ image_data.json) and --vg-images.
    #[command(verbatim_doc_comment)]
    Vqa(VqaIngestArgs),
    /// RefCOCO / RefCOCO+ / RefCOCOg: refs(unc|umd|google).p + instances.json, or TransVG split .pth.
    ///
    /// Pickles are read by mplug's own pickle reader, which never runs code from the file. The
    /// dataset is named by the folder of the pickle (refcoco/, refcoco+/, refcocog/). --images is
    /// the COCO train2014 folder (or its parent). One row per image and split: every referred
    /// object's box ([x, y, w, h] in source pixels) and its expressions (image_grounding.v1).
    #[command(verbatim_doc_comment)]
    Refcoco(ImageIngestArgs),
    /// SNLI-VE: snli_ve_{train,dev,test}.jsonl or ALBEF ve json (image_statement.v1, 1 image).
    #[command(name = "snli-ve")]
    SnliVe(ImageIngestArgs),
    /// NLVR2: train.json/dev.json/test1.json (JSON lines) or ALBEF nlvr json (image_statement.v1, 2 images).
    Nlvr2(ImageIngestArgs),
    /// CC3M: Train_GCC-training.tsv / Validation_GCC-1.1.0-Validation.tsv (`caption<TAB>url`).
    ///
    /// Images come from --images: mplug's download folder (fill it with --download or `mplug
    /// download`) or an img2dataset output folder. Every URL without an image is a reject in the
    /// manifest with its reason (HTTP status, timeout, not an image, not downloaded). Large JPEGs are
    /// decoded at 1/2-1/8 scale in the DCT domain, then resized and stored as baseline JPEG.
    #[command(name = "cc3m", verbatim_doc_comment)]
    Cc3m(WebIngestArgs),
    /// CC12M: cc12m.tsv (`url<TAB>caption`); images as for cc3m.
    #[command(name = "cc12m")]
    Cc12m(WebIngestArgs),
    /// SBU Captions: sbu-captions-all.json, or the 2011 urls.txt + captions.txt pair; images as for cc3m.
    Sbu(WebIngestArgs),
    /// MSRVTT: videodatainfo json, JSFUSION 1k-A csv, BLIP jsonl, MSRVTT-QA json/jsonl (detected per file).
    ///
    /// Decodes every clip with the FFmpeg libraries, samples N frames (the reference's uniform rule by
    /// default), resizes and stores them with their indices and times, one row per clip and split with
    /// all its captions and questions. Default pipeline `msrvtt` (12 frames @224, retrieval); pass
    /// `--pipeline msrvtt-qa` for the QA settings (16 frames @480). Bad clips (missing, empty, truncated,
    /// no video stream, unsupported codec, decode timeout) are rejects in the manifest.
    #[cfg(feature = "video")]
    #[command(verbatim_doc_comment)]
    Msrvtt(VideoIngestArgs),
    /// MSVD-QA: {train,val,test}_qa.json plus --mapping youtube_mapping.txt (16 frames @480).
    #[cfg(feature = "video")]
    #[command(name = "msvd-qa")]
    MsvdQa(VideoIngestArgs),
    /// VATEX: vatex_{training,validation}_v1.0.json, vatex_public_test_english_v1.1.json (8 frames @448).
    #[cfg(feature = "video")]
    Vatex(VideoIngestArgs),
}

/// Options of image datasets read from local files.
#[derive(Debug, Args)]
pub struct ImageIngestArgs {
    /// Annotation files (the layout is detected per file).
    #[arg(long, value_name = "FILE", num_args = 1.., required = true)]
    annotations: Vec<PathBuf>,
    /// Image root: annotation image paths are relative to it.
    #[arg(long, value_name = "DIR")]
    images: PathBuf,
    /// Put every image in this split instead of the one the annotations give.
    #[arg(long)]
    split: Option<String>,
    #[command(flatten)]
    image: ImageFlags,
    #[command(flatten)]
    common: CommonIngestArgs,
}

/// Options of `ingest vqa`.
#[derive(Debug, Args)]
pub struct VqaIngestArgs {
    /// Visual Genome image root (vg_root), for `dataset: vg` records and question_answers.json
    /// [default: --images]
    #[arg(long, value_name = "DIR")]
    vg_images: Option<PathBuf>,
    #[command(flatten)]
    base: ImageIngestArgs,
}

/// Options of the URL datasets.
#[derive(Debug, Args)]
pub struct WebIngestArgs {
    /// First download the images not yet in --images (earlier failures only with --retry-failed). A
    /// dataset already in --out is rebuilt when the images or their per-URL outcomes changed, and is
    /// "already up to date" when nothing new was fetched.
    #[arg(long)]
    download: bool,
    #[command(flatten)]
    net: super::download::DownloadFlags,
    #[command(flatten)]
    base: ImageIngestArgs,
}

/// Frame sampling rule (`--sampling`).
#[cfg(feature = "video")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SamplingArg {
    /// i·floor(vlen/N), the reference's rule.
    Uniform,
    /// Segment centres.
    Evenly,
    /// One frame every 1/F seconds (needs --fps F), at most N.
    Fps,
}

/// Options of every video ingest.
#[cfg(feature = "video")]
#[derive(Debug, Args)]
pub struct VideoIngestArgs {
    /// Annotation files (the format is detected per file).
    #[arg(long, value_name = "FILE", num_args = 1.., required = true)]
    annotations: Vec<PathBuf>,
    /// Video root, searched recursively; a clip's file is found by its id (`video7010.*`).
    #[arg(long, value_name = "DIR")]
    videos: PathBuf,
    /// MSVD-QA's youtube_mapping.txt (`<clip name> vid<n>` per line).
    #[arg(long, value_name = "FILE")]
    mapping: Option<PathBuf>,
    /// Put every clip in this split instead of the one the annotations give.
    #[arg(long)]
    split: Option<String>,
    /// Frames per clip (N).
    #[arg(long, value_name = "N")]
    frames: Option<usize>,
    /// Frame sampling rule.
    #[arg(long, value_enum)]
    sampling: Option<SamplingArg>,
    /// Frames per second for --sampling fps (alone, it implies --sampling fps).
    #[arg(long, value_name = "F")]
    fps: Option<f64>,
    /// Stored frame size in pixels.
    #[arg(long, value_name = "PX")]
    size: Option<u32>,
    /// square: exactly SIZE×SIZE (decord, the reference); fit: longest side SIZE, aspect kept.
    #[arg(long, value_enum)]
    resize: Option<crate::video::stage::FrameResize>,
    /// Frame storage: baseline JPEG or raw uint8 HWC.
    #[arg(long, value_enum)]
    codec: Option<PixelCodec>,
    /// JPEG quality of stored frames (1-100).
    #[arg(long, value_name = "Q", value_parser = clap::value_parser!(u8).range(1..=100))]
    jpeg_quality: Option<u8>,
    /// Reject clips with fewer frames than this.
    #[arg(long, value_name = "N")]
    min_frames: Option<usize>,
    /// Per-clip decode time limit in seconds.
    #[arg(long, value_name = "S")]
    timeout: Option<f64>,
    #[command(flatten)]
    common: CommonIngestArgs,
}

/// Options every ingest shares.
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
    /// Pipeline file, or the name of a built-in one (coco, msrvtt, msrvtt-qa, msvd-qa, vatex, ...)
    /// [default: the built-in pipeline of the dataset]
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
    /// Make any rejected input fatal (exit 1, no manifest written).
    #[arg(long)]
    strict: bool,
    /// Replace an existing dataset in --out built from other inputs or settings.
    #[arg(long)]
    force: bool,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
    /// Write only part I of N (0-based): the samples ⌊I·S/N⌋..⌊(I+1)·S/N⌋ of the annotation order,
    /// a complete dataset of its own. Run the N parts anywhere (a Slurm job array, …), then
    /// `mplug merge` them into the dataset a one-machine ingest writes.
    #[arg(long, value_name = "I/N", value_parser = parse_part)]
    part: Option<(u64, u64)>,
}

/// `I/N` with 0 <= I < N.
fn parse_part(s: &str) -> Result<(u64, u64), String> {
    let bad = || format!("`{s}` is not a part I/N with 0 <= I < N (e.g. 0/4)");
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (i, n): (u64, u64) = (
        i.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if n == 0 || i >= n {
        return Err(bad());
    }
    Ok((i, n))
}

/// Image-stage overrides of every image ingest.
#[derive(Debug, Args)]
pub struct ImageFlags {
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
}

impl IngestCommand {
    /// The built-in pipeline a dataset's command starts from.
    fn builtin_pipeline(&self) -> &'static str {
        match self {
            IngestCommand::Coco(_) => "coco",
            // A run reads either region or QA files; they go to different schemas.
            IngestCommand::Vg(a) if a.annotations.iter().any(|p| is_vg_qa(p)) => "vg-qa",
            IngestCommand::Vg(_) => "vg",
            IngestCommand::Flickr30k(_) => "flickr30k",
            IngestCommand::Vqa(_) => "vqa",
            IngestCommand::Refcoco(_) => "refcoco",
            IngestCommand::SnliVe(_) => "snli-ve",
            IngestCommand::Nlvr2(_) => "nlvr2",
            IngestCommand::Cc3m(_) => "cc3m",
            IngestCommand::Cc12m(_) => "cc12m",
            IngestCommand::Sbu(_) => "sbu",
            #[cfg(feature = "video")]
            IngestCommand::Msrvtt(_) => "msrvtt",
            #[cfg(feature = "video")]
            IngestCommand::MsvdQa(_) => "msvd-qa",
            #[cfg(feature = "video")]
            IngestCommand::Vatex(_) => "vatex",
        }
    }
}

fn is_vg_qa(path: &Path) -> bool {
    path.to_string_lossy().contains("question_answers")
}

/// The pipeline of `--pipeline` (a file, or a built-in name) or the dataset's built-in one, with
/// the shard-size flags applied.
fn resolve_pipeline(builtin: &str, a: &CommonIngestArgs) -> anyhow::Result<PipelineSpec> {
    let mut p = match &a.pipeline {
        Some(path) if !path.exists() && path.extension().is_none() => {
            PipelineSpec::builtin(&path.to_string_lossy())?
        }
        Some(path) => PipelineSpec::load(path)?,
        None => PipelineSpec::builtin(builtin)?,
    };
    if let Some(v) = a.shard_size {
        p.shards.shard_size_bytes = v;
    }
    if let Some(v) = a.row_group_size {
        p.shards.row_group_bytes = v;
    }
    Ok(p)
}

/// The plan of the flags every ingest shares; the caller applies its media flags.
fn base_plan(
    builtin: &str,
    annotations: &[PathBuf],
    media: (&Path, Media),
    split: &Option<String>,
    a: &CommonIngestArgs,
) -> anyhow::Result<IngestPlan> {
    Ok(IngestPlan {
        pipeline: resolve_pipeline(builtin, a)?,
        annotations: annotations.to_vec(),
        media: media.0.to_path_buf(),
        media_kind: media.1,
        vg_images: None,
        mapping: None,
        split: split.clone(),
        out_dir: a.out.clone(),
        name: a.name.clone().unwrap_or_else(|| default_name(&a.out)),
        threads: a
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        strict: a.strict,
        force: a.force,
        quiet: a.quiet,
        part: a.part,
    })
}

/// The plan of an image dataset, with the image-stage flags applied.
fn image_plan(builtin: &str, args: &ImageIngestArgs) -> anyhow::Result<IngestPlan> {
    let media = (args.images.as_path(), Media::Images);
    let mut plan = base_plan(builtin, &args.annotations, media, &args.split, &args.common)?;
    plan.check_media()?;
    let flags = &args.image;
    let image = plan.image_options()?.clone();
    plan.pipeline.image = Some(ImageOptions {
        max_side: flags.max_side.unwrap_or(image.max_side),
        codec: flags.codec.unwrap_or(image.codec),
        jpeg_quality: flags.jpeg_quality.unwrap_or(image.jpeg_quality),
        max_pixels: flags.max_pixels.unwrap_or(image.max_pixels),
        ..image
    });
    Ok(plan)
}

/// The plan of a video dataset, with the frame flags applied.
#[cfg(feature = "video")]
fn video_plan(builtin: &str, args: &VideoIngestArgs) -> anyhow::Result<IngestPlan> {
    use crate::video::sampler::FrameSampling;
    let media = (args.videos.as_path(), Media::Videos);
    let mut plan = base_plan(builtin, &args.annotations, media, &args.split, &args.common)?;
    plan.check_media()?;
    plan.mapping = args.mapping.clone();
    let mut video = plan.video_options()?.clone();
    match (args.sampling, args.fps) {
        (Some(SamplingArg::Uniform), _) => video.sampling = FrameSampling::Uniform,
        (Some(SamplingArg::Evenly), _) => video.sampling = FrameSampling::Evenly,
        (Some(SamplingArg::Fps) | None, Some(fps)) if fps > 0.0 => {
            video.sampling = FrameSampling::Fps { fps }
        }
        (Some(SamplingArg::Fps), _) | (None, Some(_)) => {
            anyhow::bail!(crate::Error::input("--sampling fps needs --fps F (> 0)"))
        }
        (None, None) => {}
    }
    video.num_frames = args.frames.unwrap_or(video.num_frames);
    video.size = args.size.unwrap_or(video.size);
    video.resize = args.resize.unwrap_or(video.resize);
    video.codec = args.codec.unwrap_or(video.codec);
    video.jpeg_quality = args.jpeg_quality.unwrap_or(video.jpeg_quality);
    video.min_frames = args.min_frames.unwrap_or(video.min_frames);
    video.timeout_s = args.timeout.unwrap_or(video.timeout_s);
    plan.pipeline.video = Some(video);
    Ok(plan)
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
    let builtin = cmd.builtin_pipeline();
    let (plan, common) = match &cmd {
        IngestCommand::Coco(a)
        | IngestCommand::Vg(a)
        | IngestCommand::Flickr30k(a)
        | IngestCommand::Refcoco(a)
        | IngestCommand::SnliVe(a)
        | IngestCommand::Nlvr2(a) => {
            let mut plan = image_plan(builtin, a)?;
            if builtin == "vg-qa" {
                plan.vg_images = Some(a.images.clone());
            }
            (plan, &a.common)
        }
        IngestCommand::Vqa(a) => {
            let mut plan = image_plan(builtin, &a.base)?;
            plan.vg_images = a.vg_images.clone();
            (plan, &a.base.common)
        }
        IngestCommand::Cc3m(a) | IngestCommand::Cc12m(a) | IngestCommand::Sbu(a) => {
            let plan = image_plan(builtin, &a.base)?;
            if a.download {
                let b = &a.base;
                super::download::download_lists(&b.annotations, &b.images, &a.net, plan.quiet)?;
            }
            (plan, &a.base.common)
        }
        #[cfg(feature = "video")]
        IngestCommand::Msrvtt(a) | IngestCommand::MsvdQa(a) | IngestCommand::Vatex(a) => {
            (video_plan(builtin, a)?, &a.common)
        }
    };
    plan.validate()?;
    let tokenizer = load_tokenizer(common)?;
    let started = std::time::Instant::now();
    let cpu_start = process_cpu_seconds();
    match ingest(&plan, &tokenizer)? {
        IngestOutcome::UpToDate(m) => {
            println!(
                "{}: already up to date (same inputs and settings); nothing to do",
                plan.out_dir.display()
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

/// What a schema's rows and texts are called in the summary.
fn nouns(schema: &str) -> (&'static str, &'static str) {
    match schema.split('.').next().unwrap_or_default() {
        "video_text" => ("clips", "captions"),
        "image_grounding" => ("images", "expressions"),
        "image_statement" => ("samples", "statements"),
        "image_qa" => ("images", ""),
        _ => ("images", "captions"),
    }
}

/// Prints the human summary of a dataset.
/// `timing` is (wall time, CPU seconds of the job) when the dataset was just written.
pub fn print_summary(m: &Manifest, timing: Option<(std::time::Duration, Option<f64>)>) {
    let t = &m.totals;
    let (unit, texts) = nouns(&m.schema);
    let line = |label: &str, value: String| println!("{label:<12}{value}");
    line("dataset", format!("{}  ({})", m.name, m.schema));
    let counts = |written: u64, rejected: u64| format!("{written} written, {rejected} rejected");
    line(unit, counts(t.samples_written, t.samples_rejected));
    if t.questions_written + t.questions_rejected > 0 {
        line(
            "questions",
            counts(t.questions_written, t.questions_rejected),
        );
    }
    if !texts.is_empty() {
        line(texts, counts(t.texts_written, t.texts_rejected));
    }
    let mib = t.shard_bytes as f64 / (1 << 20) as f64;
    line("shards", format!("{} files, {mib:.1} MiB", t.shards));
    if let Some((wall, cpu)) = timing {
        let secs = wall.as_secs_f64().max(1e-9);
        let rate = t.samples_seen as f64 / secs;
        line("time", format!("{secs:.2} s ({rate:.1} {unit}/s)"));
        if let Some(cpu) = cpu.filter(|c| *c > 0.0) {
            let per_cpu = t.samples_seen as f64 / cpu;
            line(
                "cpu",
                format!("{cpu:.2} s ({per_cpu:.1} {unit} per CPU-second)"),
            );
        }
    }
    line("hash", format!("blake3:{}", m.dataset_blake3));
    if !m.rejects.is_empty() {
        let shown = m.rejects.len().min(10);
        println!("rejects (first {shown} of {}):", m.rejects.len());
        for r in m.rejects.iter().take(10) {
            println!("  - {r}");
        }
    }
}
