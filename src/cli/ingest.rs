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
    /// Visual Genome: region_descriptions.json (v1.0/v1.2) as captions, or question_answers.json as QA.
    ///
    /// Regions become image_text.v1 captions; QA becomes image_qa.v1 (answer weight 0.5, as the
    /// reference); image_data.json gives the image paths.
    /// --images is the folder holding VG_100K/ and VG_100K_2/. A run reads either region or QA
    /// files (they go to different schemas), chosen by the file names.
    #[command(verbatim_doc_comment)]
    Vg(CaptionIngestArgs),
    /// Flickr30K: results_20130124.token, Karpathy dataset_flickr30k.json or ALBEF flickr30k_*.json.
    #[command(name = "flickr30k")]
    Flickr30k(CaptionIngestArgs),
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
    Refcoco(CaptionIngestArgs),
    /// SNLI-VE: snli_ve_{train,dev,test}.jsonl or ALBEF ve json (image_statement.v1, 1 image).
    #[command(name = "snli-ve")]
    SnliVe(CaptionIngestArgs),
    /// NLVR2: train.json/dev.json/test1.json (JSON lines) or ALBEF nlvr json (image_statement.v1, 2 images).
    Nlvr2(CaptionIngestArgs),
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
pub struct CaptionIngestArgs {
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
    /// Annotation files (official questions/annotations, ALBEF/mPLUG lists, VG question_answers).
    #[arg(long, value_name = "FILE", num_args = 1.., required = true)]
    annotations: Vec<PathBuf>,
    /// COCO image root (the reference's vqa_root): holds train2014/, val2014/, test2015/.
    #[arg(long, value_name = "DIR")]
    images: PathBuf,
    /// Visual Genome image root (vg_root), for `dataset: vg` records and question_answers.json.
    #[arg(long, value_name = "DIR")]
    vg_images: Option<PathBuf>,
    /// Put every image in this split instead of the one the files give.
    #[arg(long)]
    split: Option<String>,
    #[command(flatten)]
    image: ImageFlags,
    #[command(flatten)]
    common: CommonIngestArgs,
}

/// Options of the URL datasets.
#[derive(Debug, Args)]
pub struct WebIngestArgs {
    /// URL list files (the column order is detected per line).
    #[arg(long, value_name = "FILE", num_args = 1.., required = true)]
    annotations: Vec<PathBuf>,
    /// Image folder: mplug's download folder or an img2dataset output folder.
    #[arg(long, value_name = "DIR")]
    images: PathBuf,
    /// Put every image in this split instead of the one named by the file.
    #[arg(long)]
    split: Option<String>,
    /// First download the images not yet in --images (earlier failures are tried again); a dataset
    /// already in --out is rebuilt when the download state changed.
    #[arg(long)]
    download: bool,
    #[command(flatten)]
    net: super::download::DownloadFlags,
    #[command(flatten)]
    image: ImageFlags,
    #[command(flatten)]
    common: CommonIngestArgs,
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
    /// Frame sampling: uniform (reference: i·floor(vlen/N)), evenly (segment centres), fps.
    #[arg(long, value_parser = ["uniform", "evenly", "fps"])]
    sampling: Option<String>,
    /// Frames per second for --sampling fps.
    #[arg(long, value_name = "F")]
    fps: Option<f64>,
    /// Stored frame size in pixels.
    #[arg(long, value_name = "PX")]
    size: Option<u32>,
    /// square: exactly SIZE×SIZE (decord, the reference); fit: longest side SIZE, aspect kept.
    #[arg(long, value_parser = ["square", "fit"])]
    resize: Option<String>,
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
    /// Pipeline file, or the name of a built-in one (coco, msrvtt, msrvtt-qa, msvd-qa, vatex)
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
    image: ImageFlags,
    #[command(flatten)]
    common: CommonIngestArgs,
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

fn apply_image_flags(p: &mut PipelineSpec, a: &ImageFlags) -> anyhow::Result<()> {
    let Some(image) = p.image.as_mut() else {
        anyhow::bail!(crate::Error::input(format!(
            "pipeline `{}` has no [image] table",
            p.name
        )));
    };
    if let Some(v) = a.max_side {
        image.max_side = v;
    }
    if let Some(v) = a.codec {
        image.codec = v;
    }
    if let Some(v) = a.jpeg_quality {
        image.jpeg_quality = v;
    }
    if let Some(v) = a.max_pixels {
        image.max_pixels = v;
    }
    Ok(())
}

/// Runs a job and prints its summary.
fn run_job<S, P>(job: &IngestJob<'_>, source: &S, processor: &P) -> anyhow::Result<()>
where
    S: crate::sources::Source<Sample = P::Sample>,
    P: crate::ingest::SampleProcessor,
{
    let started = std::time::Instant::now();
    let cpu_start = process_cpu_seconds();
    match job.run(source, processor)? {
        IngestOutcome::UpToDate(m) => {
            println!(
                "{}: already up to date (same inputs and settings); nothing to do",
                job.out_dir.display()
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

/// An image_text.v1 ingest of local files with `source`.
fn run_captions<S>(builtin: &str, args: &CaptionIngestArgs, source: &S) -> anyhow::Result<()>
where
    S: crate::sources::Source<Sample = crate::sources::CaptionSample>,
{
    let a = &args.common;
    let mut pipeline = resolve_pipeline(builtin, a)?;
    apply_image_flags(&mut pipeline, &args.image)?;
    let tokenizer = load_tokenizer(a)?;
    let images = ImageRoot::open(&args.images)?;
    let processor = ImageTextProcessor::new(images, &pipeline, &tokenizer)?;
    let job = new_job(a, pipeline, &args.split, &tokenizer);
    run_job(&job, source, &processor)
}

fn run_vg(args: CaptionIngestArgs) -> anyhow::Result<()> {
    let is_qa = |p: &PathBuf| p.to_string_lossy().contains("question_answers");
    if args.annotations.iter().any(is_qa) {
        let vqa = VqaIngestArgs {
            annotations: args.annotations,
            images: args.images.clone(),
            vg_images: Some(args.images),
            split: args.split,
            image: args.image,
            common: args.common,
        };
        return run_qa("vg-qa", vqa);
    }
    let source = crate::sources::vg::VgCaptionSource {
        annotation_files: args.annotations.clone(),
        image_root: ImageRoot::open(&args.images)?.path().to_path_buf(),
        split_override: args.split.clone(),
    };
    run_captions("vg", &args, &source)
}

fn run_vqa(args: VqaIngestArgs) -> anyhow::Result<()> {
    run_qa("vqa", args)
}

fn run_qa(builtin: &str, args: VqaIngestArgs) -> anyhow::Result<()> {
    use crate::ingest::image_qa::QaTask;
    use crate::ingest::image_task::ImageTaskProcessor;
    let a = &args.common;
    let mut pipeline = resolve_pipeline(builtin, a)?;
    apply_image_flags(&mut pipeline, &args.image)?;
    let tokenizer = load_tokenizer(a)?;
    let coco = ImageRoot::open(&args.images)?;
    let vg = match &args.vg_images {
        Some(dir) => ImageRoot::open(dir)?,
        None => coco.clone(),
    };
    let source = crate::sources::vqa::VqaSource {
        annotation_files: args.annotations.clone(),
        coco_root: coco.path().to_path_buf(),
        vg_root: vg.path().to_path_buf(),
        split_override: args.split.clone(),
    };
    let task = QaTask {
        tokenizer: &tokenizer,
        normalize: pipeline
            .text
            .question_normalize
            .unwrap_or(pipeline.text.normalize),
    };
    let image = pipeline.image.clone().ok_or_else(|| {
        crate::Error::input(format!("pipeline `{}` has no [image] table", pipeline.name))
    })?;
    let processor = ImageTaskProcessor::new(task, vec![coco, vg], image);
    let job = new_job(a, pipeline, &args.split, &tokenizer);
    run_job(&job, &source, &processor)
}

/// The resolved pipeline (with the image flags) and the tokenizer of a task ingest.
fn task_setup(
    builtin: &str,
    args: &CaptionIngestArgs,
) -> anyhow::Result<(PipelineSpec, BertTokenizer)> {
    let mut pipeline = resolve_pipeline(builtin, &args.common)?;
    apply_image_flags(&mut pipeline, &args.image)?;
    Ok((pipeline, load_tokenizer(&args.common)?))
}

/// Runs an [`crate::ingest::image_task::ImageTask`] over one image root.
fn run_task<S, T>(
    args: &CaptionIngestArgs,
    pipeline: PipelineSpec,
    tokenizer: &BertTokenizer,
    source: &S,
    task: T,
) -> anyhow::Result<()>
where
    T: crate::ingest::image_task::ImageTask,
    S: crate::sources::Source<Sample = T::Sample>,
{
    use crate::ingest::image_task::ImageTaskProcessor;
    let images = ImageRoot::open(&args.images)?;
    let image = pipeline.image.clone().ok_or_else(|| {
        crate::Error::input(format!("pipeline `{}` has no [image] table", pipeline.name))
    })?;
    let processor = ImageTaskProcessor::new(task, vec![images], image);
    let job = new_job(&args.common, pipeline, &args.split, tokenizer);
    run_job(&job, source, &processor)
}

fn run_refcoco(args: CaptionIngestArgs) -> anyhow::Result<()> {
    use crate::ingest::grounding::GroundingTask;
    let (pipeline, tokenizer) = task_setup("refcoco", &args)?;
    let source = crate::sources::refcoco::RefcocoSource {
        annotation_files: args.annotations.clone(),
        image_root: ImageRoot::open(&args.images)?.path().to_path_buf(),
        split_override: args.split.clone(),
    };
    let task = GroundingTask {
        tokenizer: &tokenizer,
        normalize: pipeline.text.normalize,
        max_words: pipeline.text.max_words,
    };
    run_task(&args, pipeline.clone(), &tokenizer, &source, task)
}

fn run_statements(
    dataset: crate::sources::statements::StatementDataset,
    args: CaptionIngestArgs,
) -> anyhow::Result<()> {
    use crate::ingest::statement::StatementTask;
    let (pipeline, tokenizer) = task_setup(dataset.name(), &args)?;
    let source = crate::sources::statements::StatementSource {
        dataset,
        annotation_files: args.annotations.clone(),
        split_override: args.split.clone(),
    };
    let task = StatementTask {
        tokenizer: &tokenizer,
        normalize: pipeline.text.normalize,
        max_words: pipeline.text.max_words,
    };
    run_task(&args, pipeline.clone(), &tokenizer, &source, task)
}

fn run_web(builtin: &str, args: WebIngestArgs) -> anyhow::Result<()> {
    use crate::sources::web::WebCaptionSource;
    let a = &args.common;
    let mut pipeline = resolve_pipeline(builtin, a)?;
    apply_image_flags(&mut pipeline, &args.image)?;
    let tokenizer = load_tokenizer(a)?;
    if args.download {
        super::download::download_lists(&args.annotations, &args.images, &args.net, a.quiet)?;
    }
    let images = ImageRoot::open(&args.images)?;
    let source = WebCaptionSource {
        annotation_files: args.annotations.clone(),
        image_root: images.path().to_path_buf(),
        split_override: args.split.clone(),
    };
    let processor = ImageTextProcessor::new(images, &pipeline, &tokenizer)?;
    let mut job = new_job(a, pipeline, &args.split, &tokenizer);
    job.force |= args.download;
    run_job(&job, &source, &processor)
}

#[cfg(feature = "video")]
fn run_video(
    dataset: crate::sources::video::VideoDataset,
    builtin: &str,
    args: VideoIngestArgs,
) -> anyhow::Result<()> {
    use crate::ingest::video_text::{VideoTextOptions, VideoTextProcessor};
    use crate::sources::video::VideoTextSource;
    use crate::text::TextNormalization;
    use crate::video::sampler::FrameSampling;
    use crate::video::stage::FrameResize;
    let a = &args.common;
    let mut pipeline = resolve_pipeline(builtin, a)?;
    let Some(video) = pipeline.video.as_mut() else {
        anyhow::bail!(crate::Error::input(format!(
            "pipeline `{}` has no [video] table",
            pipeline.name
        )));
    };
    if let Some(v) = args.frames {
        video.num_frames = v;
    }
    match (args.sampling.as_deref(), args.fps) {
        (Some("uniform"), _) => video.sampling = FrameSampling::Uniform,
        (Some("evenly"), _) => video.sampling = FrameSampling::Evenly,
        (Some("fps"), Some(fps)) if fps > 0.0 => video.sampling = FrameSampling::Fps { fps },
        (Some("fps"), _) => {
            anyhow::bail!(crate::Error::input("--sampling fps needs --fps F (> 0)"))
        }
        (None, Some(fps)) if fps > 0.0 => video.sampling = FrameSampling::Fps { fps },
        _ => {}
    }
    if let Some(v) = args.size {
        video.size = v;
    }
    match args.resize.as_deref() {
        Some("square") => video.resize = FrameResize::Square,
        Some("fit") => video.resize = FrameResize::Fit,
        _ => {}
    }
    if let Some(v) = args.codec {
        video.codec = v;
    }
    if let Some(v) = args.jpeg_quality {
        video.jpeg_quality = v;
    }
    if let Some(v) = args.min_frames {
        video.min_frames = v;
    }
    if let Some(v) = args.timeout {
        video.timeout_s = v;
    }
    if video.num_frames == 0 || video.size == 0 {
        anyhow::bail!(crate::Error::input("--frames and --size must be positive"));
    }
    let video = video.clone();
    if dataset == crate::sources::video::VideoDataset::MsvdQa && args.mapping.is_none() {
        anyhow::bail!(crate::Error::input_with_hint(
            "MSVD-QA needs the clip-name mapping",
            "pass --mapping youtube_mapping.txt",
        ));
    }
    let tokenizer = load_tokenizer(a)?;
    let root = ImageRoot::open(&args.videos)?;
    let source = VideoTextSource {
        dataset,
        annotation_files: args.annotations.clone(),
        video_root: root.path().to_path_buf(),
        mapping: args.mapping.clone(),
        split_override: args.split.clone(),
    };
    let text = VideoTextOptions {
        caption_normalize: pipeline.text.normalize,
        caption_max_words: pipeline.text.max_words,
        question_normalize: pipeline
            .text
            .question_normalize
            .unwrap_or(TextNormalization::None),
    };
    let processor = VideoTextProcessor::new(root, video, text, &tokenizer);
    let job = new_job(a, pipeline, &args.split, &tokenizer);
    run_job(&job, &source, &processor)
}

/// The job for the common flags; `split` is recorded as the source option.
fn new_job<'a>(
    a: &CommonIngestArgs,
    pipeline: PipelineSpec,
    split: &Option<String>,
    tokenizer: &'a BertTokenizer,
) -> IngestJob<'a> {
    IngestJob {
        name: a.name.clone().unwrap_or_else(|| default_name(&a.out)),
        out_dir: a.out.clone(),
        pipeline,
        source_options: serde_json::json!({ "split_override": split }),
        tokenizer,
        threads: a
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        strict: a.strict,
        force: a.force,
        quiet: a.quiet,
    }
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
            let mut pipeline = resolve_pipeline("coco", a)?;
            apply_image_flags(&mut pipeline, &args.image)?;
            let tokenizer = load_tokenizer(a)?;
            let images = ImageRoot::open(&args.images)?;
            let source = CocoSource {
                annotation_files: args.annotations.clone(),
                image_root: images.path().to_path_buf(),
                split_override: args.split.clone(),
            };
            let processor = ImageTextProcessor::new(images, &pipeline, &tokenizer)?;
            let job = new_job(a, pipeline, &args.split, &tokenizer);
            run_job(&job, &source, &processor)
        }
        IngestCommand::Vg(args) => run_vg(args),
        IngestCommand::Flickr30k(args) => {
            let source = crate::sources::flickr::FlickrSource {
                annotation_files: args.annotations.clone(),
                image_root: args.images.clone(),
                split_override: args.split.clone(),
            };
            run_captions("flickr30k", &args, &source)
        }
        IngestCommand::Vqa(args) => run_vqa(args),
        IngestCommand::Refcoco(args) => run_refcoco(args),
        IngestCommand::SnliVe(args) => {
            run_statements(crate::sources::statements::StatementDataset::SnliVe, args)
        }
        IngestCommand::Nlvr2(args) => {
            run_statements(crate::sources::statements::StatementDataset::Nlvr2, args)
        }
        IngestCommand::Cc3m(args) => run_web("cc3m", args),
        IngestCommand::Cc12m(args) => run_web("cc12m", args),
        IngestCommand::Sbu(args) => run_web("sbu", args),
        #[cfg(feature = "video")]
        IngestCommand::Msrvtt(args) => {
            run_video(crate::sources::video::VideoDataset::Msrvtt, "msrvtt", args)
        }
        #[cfg(feature = "video")]
        IngestCommand::MsvdQa(args) => {
            run_video(crate::sources::video::VideoDataset::MsvdQa, "msvd-qa", args)
        }
        #[cfg(feature = "video")]
        IngestCommand::Vatex(args) => {
            run_video(crate::sources::video::VideoDataset::Vatex, "vatex", args)
        }
    }
}

/// Prints the human summary of a dataset.
/// `timing` is (wall time, CPU seconds of the job) when the dataset was just written.
pub fn print_summary(m: &Manifest, timing: Option<(std::time::Duration, Option<f64>)>) {
    let t = &m.totals;
    println!("dataset   {}  ({})", m.name, m.schema);
    let unit = if m.schema.starts_with("video") {
        "clips  "
    } else {
        "images "
    };
    println!(
        "{unit}   {} written, {} rejected",
        t.images_written, t.images_rejected
    );
    if t.questions_written + t.questions_rejected > 0 {
        println!(
            "questions {} written, {} rejected",
            t.questions_written, t.questions_rejected
        );
    }
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
            "time      {:.2} s ({:.1} {}/s)",
            secs,
            t.images_seen as f64 / secs,
            unit.trim()
        );
        if let Some(cpu) = cpu.filter(|c| *c > 0.0) {
            println!(
                "cpu       {:.2} s ({:.1} {} per CPU-second)",
                cpu,
                t.images_seen as f64 / cpu,
                unit.trim()
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
