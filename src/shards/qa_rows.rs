//! Rows of `image_qa.v1` (see `schemas/image_qa.v1.json` for each column).

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Builder, Int32Builder, ListBuilder, RecordBatch, StringBuilder,
};
use arrow::datatypes::SchemaRef;

use super::image_columns::{
    ImageColumns, StoredImage, append_f64_lists, append_i32_lists, append_i32s,
    append_string_lists, append_strings,
};
use super::rows::ShardRow;
use crate::error::Result;

/// One image with its questions.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageQaRow {
    /// Image id.
    pub image_id: String,
    /// Split.
    pub split: String,
    /// `vqa` or `vg`.
    pub dataset: String,
    /// The image.
    pub image: StoredImage,
    /// Question ids.
    pub question_ids: Vec<String>,
    /// Raw questions.
    pub questions: Vec<String>,
    /// Token ids per question.
    pub question_tokens: Vec<Vec<i32>>,
    /// Distinct answers per question.
    pub answers: Vec<Vec<String>>,
    /// Weights aligned with `answers`.
    pub answer_weights: Vec<Vec<f64>>,
    /// Number of human answers per question.
    pub answer_counts: Vec<i32>,
    /// VQA question types.
    pub question_types: Vec<String>,
    /// VQA answer types.
    pub answer_types: Vec<String>,
    /// VQA multiple-choice answers.
    pub multiple_choice_answers: Vec<String>,
}

impl ShardRow for ImageQaRow {
    fn byte_size(&self) -> usize {
        let strings = |v: &[String]| v.iter().map(String::len).sum::<usize>();
        self.image.byte_size()
            + self.image_id.len()
            + 16
            + strings(&self.question_ids)
            + strings(&self.questions)
            + self
                .question_tokens
                .iter()
                .map(|t| 4 * t.len())
                .sum::<usize>()
            + self
                .answers
                .iter()
                .map(|a| strings(a) + 8 * a.len())
                .sum::<usize>()
            + 4 * self.answer_counts.len()
            + strings(&self.question_types)
            + strings(&self.answer_types)
            + strings(&self.multiple_choice_answers)
    }

    fn to_batch(rows: &[Self], schema: &SchemaRef) -> Result<RecordBatch> {
        let mut image_id = StringBuilder::new();
        let mut split = StringBuilder::new();
        let mut dataset = StringBuilder::new();
        let mut images =
            ImageColumns::new(rows.len(), rows.iter().map(|r| r.image.image.len()).sum());
        let mut qids = ListBuilder::new(StringBuilder::new());
        let mut questions = ListBuilder::new(StringBuilder::new());
        let mut tokens = ListBuilder::new(ListBuilder::new(Int32Builder::new()));
        let mut answers = ListBuilder::new(ListBuilder::new(StringBuilder::new()));
        let mut weights = ListBuilder::new(ListBuilder::new(Float64Builder::new()));
        let mut counts = ListBuilder::new(Int32Builder::new());
        let mut qtypes = ListBuilder::new(StringBuilder::new());
        let mut atypes = ListBuilder::new(StringBuilder::new());
        let mut mc = ListBuilder::new(StringBuilder::new());
        for r in rows {
            image_id.append_value(&r.image_id);
            split.append_value(&r.split);
            dataset.append_value(&r.dataset);
            images.append(&r.image);
            append_strings(&mut qids, &r.question_ids);
            append_strings(&mut questions, &r.questions);
            append_i32_lists(&mut tokens, &r.question_tokens);
            append_string_lists(&mut answers, &r.answers);
            append_f64_lists(&mut weights, &r.answer_weights);
            append_i32s(&mut counts, &r.answer_counts);
            append_strings(&mut qtypes, &r.question_types);
            append_strings(&mut atypes, &r.answer_types);
            append_strings(&mut mc, &r.multiple_choice_answers);
        }
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(image_id.finish()),
            Arc::new(split.finish()),
            Arc::new(dataset.finish()),
        ];
        columns.extend(images.finish());
        columns.extend([
            Arc::new(qids.finish()) as ArrayRef,
            Arc::new(questions.finish()),
            Arc::new(tokens.finish()),
            Arc::new(answers.finish()),
            Arc::new(weights.finish()),
            Arc::new(counts.finish()),
            Arc::new(qtypes.finish()),
            Arc::new(atypes.finish()),
            Arc::new(mc.finish()),
        ]);
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    }
}
