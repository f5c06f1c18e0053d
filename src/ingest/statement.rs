//! `image_statement.v1` rows: one or two images with labelled, tokenised statements.

use super::SampleOutcome;
use super::image_task::ImageTask;
use super::text::tokenize_texts;
use crate::error::Result;
use crate::shards::SchemaSpec;
use crate::shards::image_columns::StoredImage;
use crate::shards::manifest::{RejectRecord, RejectStage, RejectUnit, Totals};
use crate::shards::statement_rows::StatementRow;
use crate::sources::statements::StatementSample;
use crate::text::{BertTokenizer, TextNormalization};

/// The pair-classification task.
pub struct StatementTask<'a> {
    /// Tokenizer.
    pub tokenizer: &'a BertTokenizer,
    /// Normalisation (the reference: pre_caption, 30 words).
    pub normalize: TextNormalization,
    /// Word limit.
    pub max_words: usize,
}

impl ImageTask for StatementTask<'_> {
    type Sample = StatementSample;
    type Row = StatementRow;

    fn schema(&self) -> SchemaSpec {
        SchemaSpec::image_statement_v1()
    }

    fn image_columns(&self) -> &'static [&'static str] {
        &["image", "right_image"]
    }

    fn identity(&self, s: &StatementSample) -> (String, String) {
        (
            s.sample_id.clone(),
            s.images.first().cloned().unwrap_or_default(),
        )
    }

    fn image_paths(&self, s: &StatementSample) -> Vec<(usize, String)> {
        s.images.iter().map(|p| (0, p.clone())).collect()
    }

    fn count(&self, row: &StatementRow, totals: &mut Totals) {
        totals.samples_written += 1;
        totals.texts_written += row.statements.len() as u64;
    }

    fn build(
        &self,
        s: StatementSample,
        images: Vec<StoredImage>,
    ) -> Result<SampleOutcome<StatementRow>> {
        let texts: Vec<String> = s.statements.iter().map(|x| x.text.clone()).collect();
        let source = s.images.first().cloned().unwrap_or_default();
        let t = tokenize_texts(
            &texts,
            self.normalize,
            self.max_words,
            self.tokenizer,
            &source,
            &s.sample_id,
            RejectUnit::Statement,
        )?;
        let mut rejects = t.rejects;
        let mut images = images.into_iter();
        let (Some(image), right) = (images.next(), images.next()) else {
            return Err(crate::Error::internal("statement sample without images"));
        };
        if t.kept.is_empty() {
            rejects.push(RejectRecord {
                source,
                sample_id: s.sample_id.clone(),
                stage: RejectStage::Annotation,
                unit: RejectUnit::Image,
                reason: "no valid statement".to_string(),
            });
            return Ok(SampleOutcome {
                row: None,
                rejects,
                files: Vec::new(),
            });
        }
        let pick = |f: &dyn Fn(usize) -> String| t.kept.iter().map(|&i| f(i)).collect::<Vec<_>>();
        let row = StatementRow {
            sample_id: s.sample_id.clone(),
            split: s.split.clone(),
            dataset: s.dataset.name().to_string(),
            image,
            right,
            statement_ids: pick(&|i| s.statements[i].id.clone()),
            statements: pick(&|i| s.statements[i].text.clone()),
            statement_tokens: t.tokens,
            labels: t.kept.iter().map(|&i| s.statements[i].label).collect(),
            premises: pick(&|i| s.statements[i].premise.clone()),
        };
        Ok(SampleOutcome {
            row: Some(row),
            rejects,
            files: Vec::new(),
        })
    }
}
