//! The image part of every task schema (QA, grounding, statements): read each image of a sample
//! from its root, run the image stage, then let the task build its row from the stored images.
//! A sample whose image cannot be read or decoded is rejected whole.

use super::{SampleOutcome, SampleProcessor};
use crate::error::Result;
use crate::shards::SchemaSpec;
use crate::shards::image_columns::StoredImage;
use crate::shards::manifest::{RejectStage, RejectUnit, Totals};
use crate::shards::rows::ShardRow;
use crate::sources::ImageRoot;
use crate::stages::{ImageOptions, ImageStage, PixelCodec};

/// What a task schema adds to the shared image handling.
pub trait ImageTask: Sync {
    /// What the source yields.
    type Sample: Send;
    /// What goes into the shards.
    type Row: ShardRow + Send;
    /// The row schema.
    fn schema(&self) -> SchemaSpec;
    /// The binary image columns (written without zstd when they hold JPEG): one `image` by default.
    fn image_columns(&self) -> &'static [&'static str] {
        &["image"]
    }
    /// (sample id, first image path) for reject records.
    fn identity(&self, sample: &Self::Sample) -> (String, String);
    /// (root index, path relative to that root) of each image, in row order.
    fn image_paths(&self, sample: &Self::Sample) -> Vec<(usize, String)>;
    /// The row from the sample and its stored images (same order as `image_paths`); texts that
    /// fail are rejects in the outcome.
    fn build(
        &self,
        sample: Self::Sample,
        images: Vec<StoredImage>,
    ) -> Result<SampleOutcome<Self::Row>>;
    /// Adds a written row to the totals.
    fn count(&self, row: &Self::Row, totals: &mut Totals);
}

/// A [`SampleProcessor`] for an [`ImageTask`] over one or more image roots.
pub struct ImageTaskProcessor<T> {
    task: T,
    roots: Vec<ImageRoot>,
    stage: ImageStage,
    codec: PixelCodec,
}

impl<T: ImageTask> ImageTaskProcessor<T> {
    /// `roots[i]` resolves the paths the task gives with root index `i`.
    pub fn new(task: T, roots: Vec<ImageRoot>, image: ImageOptions) -> Self {
        ImageTaskProcessor {
            task,
            roots,
            codec: image.codec,
            stage: ImageStage::new(image),
        }
    }

    /// Reads and processes one image; `Err((stage, reason))` rejects the sample. `name_file`: the
    /// reason names the file (samples of several images; a one-image sample's reject record
    /// already names it as its `source`).
    fn load(
        &self,
        root: usize,
        rel: &str,
        name_file: bool,
    ) -> Result<std::result::Result<(StoredImage, u64), (RejectStage, String)>> {
        let Some(images) = self.roots.get(root) else {
            return Err(crate::Error::internal(format!("no image root #{root}")));
        };
        let path = match images.resolve(rel) {
            Ok(p) => p,
            Err(reason) => return Ok(Err((RejectStage::Path, reason))),
        };
        let which = if name_file {
            format!("`{rel}`: ")
        } else {
            String::new()
        };
        let bytes = match crate::sources::files::read_regular_file(&path) {
            Ok(b) => b,
            Err(e) => {
                let file = if name_file {
                    format!(" `{rel}`")
                } else {
                    String::new()
                };
                let reason = format!("cannot read image file{file}: {e}");
                return Ok(Err((RejectStage::Path, reason)));
            }
        };
        let img = match self.stage.process(&bytes)? {
            Ok(img) => img,
            Err(e) => return Ok(Err((RejectStage::Decode, format!("{which}{e}")))),
        };
        Ok(Ok((
            StoredImage {
                source_path: rel.to_string(),
                source_blake3: img.source_blake3,
                pixel_blake3: img.pixel_blake3,
                pixel_dhash: img.pixel_dhash,
                orig_width: img.orig_width,
                orig_height: img.orig_height,
                width: img.width,
                height: img.height,
                image_codec: self.codec.as_str(),
                image: img.data,
            },
            bytes.len() as u64,
        )))
    }
}

impl<T: ImageTask> SampleProcessor for ImageTaskProcessor<T> {
    type Sample = T::Sample;
    type Row = T::Row;

    fn schema(&self) -> SchemaSpec {
        self.task.schema()
    }

    fn precompressed_columns(&self) -> &'static [&'static str] {
        if self.codec == PixelCodec::Jpeg {
            self.task.image_columns()
        } else {
            &[]
        }
    }

    fn identity(&self, sample: &T::Sample) -> (String, String) {
        self.task.identity(sample)
    }

    fn count(&self, row: &T::Row, totals: &mut Totals) {
        self.task.count(row, totals)
    }

    fn process(&self, sample: T::Sample) -> Result<SampleOutcome<T::Row>> {
        let (id, source) = self.task.identity(&sample);
        let mut images = Vec::new();
        let mut files = Vec::new();
        let paths = self.task.image_paths(&sample);
        let name_file = paths.len() > 1;
        for (root, rel) in paths {
            match self.load(root, &rel, name_file)? {
                Ok((img, bytes)) => {
                    files.push((rel, bytes, img.source_blake3.clone()));
                    images.push(img);
                }
                Err((stage, reason)) => {
                    let mut out =
                        SampleOutcome::rejected(&source, &id, stage, RejectUnit::Image, reason);
                    out.files = files;
                    return Ok(out);
                }
            }
        }
        let mut out = self.task.build(sample, images)?;
        out.files = files;
        Ok(out)
    }
}
