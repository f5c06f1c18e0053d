//! An ingest plan: what the command-line flags (or any other front end) resolve to, validated
//! before any file is read. The CLI turns raw arguments into a plan; [`super::datasets::ingest`]
//! runs it.

use std::path::PathBuf;

use super::IngestJob;
use super::pipeline::PipelineSpec;
use crate::error::{Error, Result};
use crate::stages::ImageOptions;
use crate::text::BertTokenizer;

/// What a dataset's media are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    /// Still images (`--images`).
    Images,
    /// Video clips (`--videos`).
    Videos,
}

impl Media {
    /// `images` | `videos`, for messages.
    pub fn noun(self) -> &'static str {
        match self {
            Media::Images => "images",
            Media::Videos => "videos",
        }
    }
}

/// A resolved ingest: the pipeline with every override applied, the inputs and the job settings.
#[derive(Debug, Clone)]
pub struct IngestPlan {
    /// The pipeline (file or built-in, with the flags' overrides); its `source` picks the reader.
    pub pipeline: PipelineSpec,
    /// Annotation files, in the order given.
    pub annotations: Vec<PathBuf>,
    /// The image root or the video root.
    pub media: PathBuf,
    /// Which of the two `media` is.
    pub media_kind: Media,
    /// Visual Genome image root, for VQA's `vg` records (defaults to `media`).
    pub vg_images: Option<PathBuf>,
    /// MSVD-QA's clip-name mapping file.
    pub mapping: Option<PathBuf>,
    /// Put every sample in this split.
    pub split: Option<String>,
    /// Output dataset directory.
    pub out_dir: PathBuf,
    /// Dataset name in the manifest.
    pub name: String,
    /// Worker threads (the output does not depend on it).
    pub threads: usize,
    /// Fail on the first reject.
    pub strict: bool,
    /// Replace a dataset built from other inputs or settings.
    pub force: bool,
    /// Hide progress bars.
    pub quiet: bool,
    /// `--part I/N`.
    pub part: Option<(u64, u64)>,
}

impl IngestPlan {
    /// Checks what can be checked before reading any file.
    pub fn validate(&self) -> Result<()> {
        self.check_media()?;
        if self.annotations.is_empty() {
            return Err(Error::input_with_hint(
                "no annotation file given",
                "pass --annotations FILE...",
            ));
        }
        match self.media_kind {
            Media::Images => {
                self.image_options()?;
            }
            Media::Videos => {
                #[cfg(feature = "video")]
                {
                    let v = self.video_options()?;
                    if v.num_frames == 0 || v.size == 0 {
                        return Err(Error::input_with_hint(
                            format!(
                                "pipeline `{}` asks for {} frames of {} px: both must be positive",
                                self.pipeline.name, v.num_frames, v.size
                            ),
                            "set --frames and --size (or num_frames and size in the pipeline)",
                        ));
                    }
                }
            }
        }
        if self.threads == 0 {
            return Err(Error::input("--threads must be at least 1"));
        }
        Ok(())
    }

    /// Checks that the pipeline's reader takes the media this plan was given (an image pipeline for
    /// `--images`, a video one for `--videos`).
    pub fn check_media(&self) -> Result<()> {
        let reader = super::datasets::dataset(&self.pipeline.source)?;
        if reader.media == self.media_kind {
            return Ok(());
        }
        Err(Error::input_with_hint(
            format!(
                "pipeline `{}` reads {} (source `{}`), but this command ingests {}",
                self.pipeline.name,
                reader.media.noun(),
                reader.source,
                self.media_kind.noun()
            ),
            format!("run `mplug ingest {}` with this pipeline", reader.source),
        ))
    }

    /// The pipeline's `[image]` table.
    pub fn image_options(&self) -> Result<&ImageOptions> {
        self.pipeline
            .image
            .as_ref()
            .ok_or_else(|| self.missing_table("image"))
    }

    /// The pipeline's `[video]` table.
    #[cfg(feature = "video")]
    pub fn video_options(&self) -> Result<&crate::video::stage::VideoOptions> {
        self.pipeline
            .video
            .as_ref()
            .ok_or_else(|| self.missing_table("video"))
    }

    fn missing_table(&self, table: &str) -> Error {
        Error::input_with_hint(
            format!("pipeline `{}` has no [{table}] table", self.pipeline.name),
            format!(
                "compare with the built-in pipelines/{}.toml",
                self.pipeline.source
            ),
        )
    }

    /// The job that writes this plan's dataset. The split override is recorded (and hashed) in the
    /// manifest as the source option.
    pub fn job<'a>(&self, tokenizer: &'a BertTokenizer) -> IngestJob<'a> {
        IngestJob {
            name: self.name.clone(),
            out_dir: self.out_dir.clone(),
            pipeline: self.pipeline.clone(),
            source_options: serde_json::json!({ "split_override": self.split }),
            tokenizer,
            threads: self.threads,
            strict: self.strict,
            force: self.force,
            quiet: self.quiet,
            part: self.part,
        }
    }
}
