//! `image_text.v1` rows: an image with its captions, normalised and tokenised. The image part is the
//! shared [`super::image_task`] path, so captions and every task schema reject images alike.

use super::SampleOutcome;
use super::image_task::ImageTask;
use super::text::tokenize_texts;
use crate::error::{Error, Result};
use crate::shards::SchemaSpec;
use crate::shards::image_columns::StoredImage;
use crate::shards::manifest::{RejectRecord, RejectStage, RejectUnit, Totals};
use crate::shards::rows::ImageTextRow;
use crate::sources::CaptionSample;
use crate::text::{BertTokenizer, TextNormalization};

/// The captioning task: [`CaptionSample`]s into [`ImageTextRow`]s.
pub struct CaptionTask<'a> {
    /// Tokenizer.
    pub tokenizer: &'a BertTokenizer,
    /// Caption normalisation (`pre_caption` in the reference).
    pub normalize: TextNormalization,
    /// Word limit (0 = none).
    pub max_words: usize,
}

impl ImageTask for CaptionTask<'_> {
    type Sample = CaptionSample;
    type Row = ImageTextRow;

    fn schema(&self) -> SchemaSpec {
        SchemaSpec::image_text_v1()
    }

    fn identity(&self, sample: &CaptionSample) -> (String, String) {
        (sample.image_id.clone(), sample.source_path.clone())
    }

    fn image_paths(&self, sample: &CaptionSample) -> Vec<(usize, String)> {
        vec![(0, sample.source_path.clone())]
    }

    fn count(&self, row: &ImageTextRow, totals: &mut Totals) {
        totals.samples_written += 1;
        totals.texts_written += row.captions.len() as u64;
    }

    fn build(
        &self,
        sample: CaptionSample,
        mut images: Vec<StoredImage>,
    ) -> Result<SampleOutcome<ImageTextRow>> {
        let t = tokenize_texts(
            &sample.captions,
            self.normalize,
            self.max_words,
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
                files: Vec::new(),
            });
        }
        let image = images
            .pop()
            .ok_or_else(|| Error::internal("caption sample without its image"))?;
        let captions = t.kept.iter().map(|&i| sample.captions[i].clone()).collect();
        Ok(SampleOutcome {
            row: Some(ImageTextRow {
                image_id: sample.image_id,
                split: sample.split,
                image,
                captions,
                caption_tokens: t.tokens,
            }),
            rejects,
            files: Vec::new(),
        })
    }
}
