//! `image_grounding.v1` rows: an image with its boxes and tokenised referring expressions.

use super::SampleOutcome;
use super::image_task::ImageTask;
use super::text::tokenize_texts;
use crate::error::Result;
use crate::shards::SchemaSpec;
use crate::shards::grounding_rows::GroundingRow;
use crate::shards::image_columns::StoredImage;
use crate::shards::manifest::{RejectRecord, RejectStage, RejectUnit, Totals};
use crate::sources::refcoco::RefSample;
use crate::text::{BertTokenizer, TextNormalization};

/// The grounding task.
pub struct GroundingTask<'a> {
    /// Tokenizer.
    pub tokenizer: &'a BertTokenizer,
    /// Expression normalisation (the reference: none; the tokenizer lower-cases).
    pub normalize: TextNormalization,
    /// Word limit (0 = none).
    pub max_words: usize,
}

impl ImageTask for GroundingTask<'_> {
    type Sample = RefSample;
    type Row = GroundingRow;

    fn schema(&self) -> SchemaSpec {
        SchemaSpec::image_grounding_v1()
    }

    fn identity(&self, s: &RefSample) -> (String, String) {
        (s.image_id.clone(), s.source_path.clone())
    }

    fn image_paths(&self, s: &RefSample) -> Vec<(usize, String)> {
        vec![(0, s.source_path.clone())]
    }

    fn count(&self, row: &GroundingRow, totals: &mut Totals) {
        totals.samples_written += 1;
        totals.texts_written += row.sentences.len() as u64;
    }

    fn build(
        &self,
        s: RefSample,
        mut images: Vec<StoredImage>,
    ) -> Result<SampleOutcome<GroundingRow>> {
        let texts: Vec<String> = s.sentences.iter().map(|x| x.text.clone()).collect();
        let t = tokenize_texts(
            &texts,
            self.normalize,
            self.max_words,
            self.tokenizer,
            &s.source_path,
            &s.image_id,
            RejectUnit::Caption,
        )?;
        let mut rejects = t.rejects;
        let Some(image) = images.pop() else {
            return Err(crate::Error::internal("grounding sample without its image"));
        };
        if t.kept.is_empty() {
            rejects.push(RejectRecord {
                source: s.source_path.clone(),
                sample_id: s.image_id.clone(),
                stage: RejectStage::Annotation,
                unit: RejectUnit::Image,
                reason: "image has no valid referring expression".to_string(),
            });
            return Ok(SampleOutcome {
                row: None,
                rejects,
                files: Vec::new(),
            });
        }
        let row = GroundingRow {
            image_id: s.image_id,
            split: s.split,
            dataset: s.dataset,
            split_by: s.split_by,
            image,
            ref_ids: s.objects.iter().map(|o| o.ref_id).collect(),
            ann_ids: s.objects.iter().map(|o| o.ann_id).collect(),
            category_ids: s.objects.iter().map(|o| o.category_id).collect(),
            boxes: s.objects.iter().map(|o| o.bbox.to_vec()).collect(),
            sentence_ids: t.kept.iter().map(|&i| s.sentences[i].sent_id).collect(),
            sentence_refs: t
                .kept
                .iter()
                .map(|&i| s.sentences[i].object as i32)
                .collect(),
            sentences: t
                .kept
                .iter()
                .map(|&i| s.sentences[i].text.clone())
                .collect(),
            sentence_tokens: t.tokens,
        };
        Ok(SampleOutcome {
            row: Some(row),
            rejects,
            files: Vec::new(),
        })
    }
}
