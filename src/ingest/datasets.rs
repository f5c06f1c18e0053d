//! The dataset registry: a pipeline's `source` key names the reader and the row family that turn
//! its raw files into shards. `mplug ingest <dataset>` only resolves flags into an [`IngestPlan`]
//! and calls [`ingest`]; adding a dataset is a source reader, one entry in [`DATASETS`] and a
//! pipeline file (see docs/ARCHITECTURE.md, "Adding a dataset").

use std::path::PathBuf;

use super::grounding::GroundingTask;
use super::image_qa::QaTask;
use super::image_task::{ImageTask, ImageTaskProcessor};
use super::image_text::CaptionTask;
use super::plan::{IngestPlan, Media};
use super::statement::StatementTask;
use super::{IngestJob, IngestOutcome};
use crate::error::{Error, Result};
use crate::sources::coco::CocoSource;
use crate::sources::flickr::FlickrSource;
use crate::sources::refcoco::RefcocoSource;
use crate::sources::statements::{StatementDataset, StatementSource};
use crate::sources::vg::VgCaptionSource;
use crate::sources::web::WebCaptionSource;
use crate::sources::{ImageRoot, Source};
use crate::text::BertTokenizer;

/// One dataset the engine can ingest.
pub struct Dataset {
    /// The pipeline `source` key (`coco`, `vqa`, `msrvtt`, ...).
    pub source: &'static str,
    /// Whether its media are images or video clips.
    pub media: Media,
    /// Reads the plan's files and writes the dataset.
    run: fn(&IngestPlan, &IngestJob<'_>) -> Result<IngestOutcome>,
}

/// A source of the usual three inputs (annotation files, canonical image root, split override),
/// built from the plan's [`SourceInputs`].
macro_rules! from_inputs {
    ($source:ident) => {
        |(annotation_files, image_root, split_override)| $source {
            annotation_files,
            image_root,
            split_override,
        }
    };
}

/// Every dataset, keyed by the pipeline's `source`.
pub const DATASETS: &[Dataset] = &[
    image("coco", |p, j| {
        run_one_root(p, j, from_inputs!(CocoSource), caption_task(p, j))
    }),
    image("vg", |p, j| {
        run_one_root(p, j, from_inputs!(VgCaptionSource), caption_task(p, j))
    }),
    image("vg-qa", run_qa),
    image("flickr30k", |p, j| {
        run_one_root(p, j, from_inputs!(FlickrSource), caption_task(p, j))
    }),
    image("vqa", run_qa),
    image("refcoco", |p, j| {
        run_one_root(p, j, from_inputs!(RefcocoSource), grounding_task(p, j))
    }),
    image("snli-ve", |p, j| {
        run_statements(StatementDataset::SnliVe, p, j)
    }),
    image("nlvr2", |p, j| {
        run_statements(StatementDataset::Nlvr2, p, j)
    }),
    image("cc3m", run_web),
    image("cc12m", run_web),
    image("sbu", run_web),
    #[cfg(feature = "video")]
    video("msrvtt", |p, j| video::run(VideoDataset::Msrvtt, p, j)),
    #[cfg(feature = "video")]
    video("msvd-qa", |p, j| video::run(VideoDataset::MsvdQa, p, j)),
    #[cfg(feature = "video")]
    video("vatex", |p, j| video::run(VideoDataset::Vatex, p, j)),
];

const fn image(
    source: &'static str,
    run: fn(&IngestPlan, &IngestJob<'_>) -> Result<IngestOutcome>,
) -> Dataset {
    Dataset {
        source,
        media: Media::Images,
        run,
    }
}

#[cfg(feature = "video")]
const fn video(
    source: &'static str,
    run: fn(&IngestPlan, &IngestJob<'_>) -> Result<IngestOutcome>,
) -> Dataset {
    Dataset {
        source,
        media: Media::Videos,
        run,
    }
}

/// The registry entry for a pipeline `source` key.
pub fn dataset(source: &str) -> Result<&'static Dataset> {
    DATASETS.iter().find(|d| d.source == source).ok_or_else(|| {
        let known: Vec<&str> = DATASETS.iter().map(|d| d.source).collect();
        Error::input_with_hint(
            format!("no dataset reader for pipeline source `{source}`"),
            format!("the known sources are: {}", known.join(", ")),
        )
    })
}

/// Ingests the plan with the reader its pipeline names.
pub fn ingest(plan: &IngestPlan, tokenizer: &BertTokenizer) -> Result<IngestOutcome> {
    plan.validate()?;
    let entry = dataset(&plan.pipeline.source)?;
    let job = plan.job(tokenizer);
    (entry.run)(plan, &job)
}

/// Runs an image task over `roots` (root `i` resolves the paths the task gives with index `i`).
fn run_image_task<S, T>(
    plan: &IngestPlan,
    job: &IngestJob<'_>,
    source: &S,
    task: T,
    roots: Vec<ImageRoot>,
) -> Result<IngestOutcome>
where
    T: ImageTask,
    S: Source<Sample = T::Sample>,
{
    let processor = ImageTaskProcessor::new(task, roots, plan.image_options()?.clone());
    job.run(source, &processor)
}

/// The captioning task with the pipeline's text settings.
fn caption_task<'a>(plan: &IngestPlan, job: &IngestJob<'a>) -> CaptionTask<'a> {
    CaptionTask {
        tokenizer: job.tokenizer,
        normalize: plan.pipeline.text.normalize,
        max_words: plan.pipeline.text.max_words,
    }
}

/// The inputs most sources take: (annotation files, canonical image root, split override).
type SourceInputs = (Vec<PathBuf>, PathBuf, Option<String>);

/// Runs `task` over one image root with the source `make_source` builds from the plan's inputs.
fn run_one_root<S, T>(
    plan: &IngestPlan,
    job: &IngestJob<'_>,
    make_source: fn(SourceInputs) -> S,
    task: T,
) -> Result<IngestOutcome>
where
    T: ImageTask,
    S: Source<Sample = T::Sample>,
{
    let images = ImageRoot::open(&plan.media)?;
    let inputs = (
        plan.annotations.clone(),
        images.path().to_path_buf(),
        plan.split.clone(),
    );
    run_image_task(plan, job, &make_source(inputs), task, vec![images])
}

/// CC3M, CC12M, SBU: URL lists over a downloaded image folder.
fn run_web(plan: &IngestPlan, job: &IngestJob<'_>) -> Result<IngestOutcome> {
    let task = caption_task(plan, job);
    run_one_root(plan, job, from_inputs!(WebCaptionSource), task)
}

/// VQA v2 and Visual Genome QA: COCO images are root 0, VG images root 1.
fn run_qa(plan: &IngestPlan, job: &IngestJob<'_>) -> Result<IngestOutcome> {
    let coco = ImageRoot::open(&plan.media)?;
    let vg = match &plan.vg_images {
        Some(dir) => ImageRoot::open(dir)?,
        None => coco.clone(),
    };
    let source = crate::sources::vqa::VqaSource {
        annotation_files: plan.annotations.clone(),
        coco_root: coco.path().to_path_buf(),
        vg_root: vg.path().to_path_buf(),
        split_override: plan.split.clone(),
    };
    let text = &plan.pipeline.text;
    let task = QaTask {
        tokenizer: job.tokenizer,
        normalize: text.question_normalize.unwrap_or(text.normalize),
    };
    run_image_task(plan, job, &source, task, vec![coco, vg])
}

/// RefCOCO/+/g: boxes and referring expressions.
fn grounding_task<'a>(plan: &IngestPlan, job: &IngestJob<'a>) -> GroundingTask<'a> {
    GroundingTask {
        tokenizer: job.tokenizer,
        normalize: plan.pipeline.text.normalize,
        max_words: plan.pipeline.text.max_words,
    }
}

fn run_statements(
    dataset: StatementDataset,
    plan: &IngestPlan,
    job: &IngestJob<'_>,
) -> Result<IngestOutcome> {
    let source = StatementSource {
        dataset,
        annotation_files: plan.annotations.clone(),
        split_override: plan.split.clone(),
    };
    let task = StatementTask {
        tokenizer: job.tokenizer,
        normalize: plan.pipeline.text.normalize,
        max_words: plan.pipeline.text.max_words,
    };
    let images = ImageRoot::open(&plan.media)?;
    run_image_task(plan, job, &source, task, vec![images])
}

#[cfg(feature = "video")]
use crate::sources::video::VideoDataset;

#[cfg(feature = "video")]
mod video {
    use super::*;
    use crate::ingest::video_text::{VideoTextOptions, VideoTextProcessor};
    use crate::sources::video::VideoTextSource;
    use crate::text::TextNormalization;

    /// MSRVTT (+QA), MSVD-QA and VATEX clips into `video_text.v1` rows.
    pub(super) fn run(
        dataset: VideoDataset,
        plan: &IngestPlan,
        job: &IngestJob<'_>,
    ) -> Result<IngestOutcome> {
        let video = plan.video_options()?.clone();
        if dataset == VideoDataset::MsvdQa && plan.mapping.is_none() {
            return Err(Error::input_with_hint(
                "MSVD-QA needs the clip-name mapping",
                "pass --mapping youtube_mapping.txt",
            ));
        }
        let root = ImageRoot::open(&plan.media)?;
        let source = VideoTextSource {
            dataset,
            annotation_files: plan.annotations.clone(),
            video_root: root.path().to_path_buf(),
            mapping: plan.mapping.clone(),
            split_override: plan.split.clone(),
        };
        let text = VideoTextOptions {
            caption_normalize: plan.pipeline.text.normalize,
            caption_max_words: plan.pipeline.text.max_words,
            question_normalize: plan
                .pipeline
                .text
                .question_normalize
                .unwrap_or(TextNormalization::None),
        };
        let processor = VideoTextProcessor::new(root, video, text, job.tokenizer);
        job.run(&source, &processor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::pipeline::BUILTIN_PIPELINES;
    use crate::ingest::pipeline::PipelineSpec;

    #[test]
    fn every_builtin_pipeline_has_a_reader_of_its_media() {
        for (name, _) in BUILTIN_PIPELINES {
            let p = PipelineSpec::builtin(name).unwrap();
            #[cfg(not(feature = "video"))]
            if p.schema.starts_with("video") {
                continue;
            }
            let d = dataset(&p.source).unwrap_or_else(|e| panic!("{name}: {e}"));
            let has_media = match d.media {
                Media::Images => p.image.is_some(),
                #[cfg(feature = "video")]
                Media::Videos => p.video.is_some(),
                #[cfg(not(feature = "video"))]
                Media::Videos => false,
            };
            assert!(
                has_media,
                "pipeline {name} lacks its {} table",
                d.media.noun()
            );
        }
    }

    #[test]
    fn an_unknown_source_names_the_known_ones() {
        let err = dataset("imagenet").err().unwrap();
        assert!(err.to_string().contains("`imagenet`"), "{err}");
        assert!(err.hint().unwrap().contains("coco, vg"), "{:?}", err.hint());
    }
}
