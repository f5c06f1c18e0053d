//! Image–caption rows (`image_text.v1`): read the image, run the image stage, tokenise captions.

use super::text::tokenize_texts;
use super::{SampleOutcome, SampleProcessor};
use crate::engine::pipeline::{PipelineSpec, TextOptions};
use crate::error::{Error, Result};
use crate::shards::SchemaSpec;
use crate::shards::manifest::{RejectRecord, RejectStage, RejectUnit, Totals};
use crate::shards::rows::ImageTextRow;
use crate::sources::{CaptionSample, ImageRoot};
use crate::stages::{ImageOptions, ImageStage, PixelCodec};
use crate::text::BertTokenizer;

/// Processes [`CaptionSample`]s into [`ImageTextRow`]s.
pub struct ImageTextProcessor<'a> {
    images: ImageRoot,
    stage: ImageStage,
    image: ImageOptions,
    text: TextOptions,
    tokenizer: &'a BertTokenizer,
}

impl<'a> ImageTextProcessor<'a> {
    /// A processor reading images under `images` with the pipeline's image and text settings.
    pub fn new(
        images: ImageRoot,
        pipeline: &PipelineSpec,
        tokenizer: &'a BertTokenizer,
    ) -> Result<Self> {
        let image = pipeline.image.clone().ok_or_else(|| {
            Error::input(format!("pipeline `{}` has no [image] table", pipeline.name))
        })?;
        Ok(ImageTextProcessor {
            images,
            stage: ImageStage::new(image.clone()),
            image,
            text: pipeline.text.clone(),
            tokenizer,
        })
    }
}

impl SampleProcessor for ImageTextProcessor<'_> {
    type Sample = CaptionSample;
    type Row = ImageTextRow;

    fn schema(&self) -> SchemaSpec {
        SchemaSpec::image_text_v1()
    }

    fn precompressed_columns(&self) -> &'static [&'static str] {
        if self.image.codec == PixelCodec::Jpeg {
            &["image"]
        } else {
            &[]
        }
    }

    fn identity(&self, sample: &CaptionSample) -> (String, String) {
        (sample.image_id.clone(), sample.source_path.clone())
    }

    fn count(&self, row: &ImageTextRow, totals: &mut Totals) {
        totals.images_written += 1;
        totals.captions_written += row.captions.len() as u64;
    }

    fn process(&self, sample: CaptionSample) -> Result<SampleOutcome<ImageTextRow>> {
        let reject = |stage: RejectStage, reason: String| {
            SampleOutcome::rejected(
                &sample.source_path,
                &sample.image_id,
                stage,
                RejectUnit::Image,
                reason,
            )
        };
        let path = match self.images.resolve(&sample.source_path) {
            Ok(p) => p,
            Err(reason) => return Ok(reject(RejectStage::Path, reason)),
        };
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                return Ok(reject(
                    RejectStage::Path,
                    format!("cannot read image file: {e}"),
                ));
            }
        };
        let image = match self.stage.process(&bytes)? {
            Ok(img) => img,
            Err(e) => return Ok(reject(RejectStage::Decode, e.to_string())),
        };
        let file = Some((
            sample.source_path.clone(),
            bytes.len() as u64,
            image.source_blake3.clone(),
        ));
        let text = &self.text;
        let t = tokenize_texts(
            &sample.captions,
            text.normalize,
            text.max_words,
            self.tokenizer,
            &sample.source_path,
            &sample.image_id,
            RejectUnit::Caption,
        )?;
        let mut rejects = t.rejects;
        if t.kept.is_empty() {
            rejects.push(RejectRecord {
                source: sample.source_path.clone(),
                sample_id: sample.image_id.clone(),
                stage: RejectStage::Annotation,
                unit: RejectUnit::Image,
                reason: "image has no valid caption".to_string(),
            });
            return Ok(SampleOutcome {
                row: None,
                rejects,
                files: file.into_iter().collect(),
            });
        }
        let captions = t.kept.iter().map(|&i| sample.captions[i].clone()).collect();
        let row = ImageTextRow {
            image_id: sample.image_id,
            split: sample.split,
            source_path: sample.source_path,
            source_blake3: image.source_blake3,
            pixel_blake3: image.pixel_blake3,
            pixel_dhash: image.pixel_dhash,
            orig_width: image.orig_width,
            orig_height: image.orig_height,
            width: image.width,
            height: image.height,
            image_codec: self.image.codec.as_str(),
            image: image.data,
            captions,
            caption_tokens: t.tokens,
        };
        Ok(SampleOutcome {
            row: Some(row),
            rejects,
            files: file.into_iter().collect(),
        })
    }
}
