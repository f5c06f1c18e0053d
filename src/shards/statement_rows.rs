//! Rows of `image_statement.v1` (see `schemas/image_statement.v1.json` for each column).

use std::sync::Arc;

use arrow::array::{ArrayRef, Int32Builder, ListBuilder, RecordBatch, StringBuilder};
use arrow::datatypes::SchemaRef;

use super::image_columns::{
    ImageColumns, StoredImage, append_i32_lists, append_i32s, append_strings,
};
use super::rows::ShardRow;
use crate::error::Result;

/// One image set with its statements and labels.
#[derive(Debug, Clone, PartialEq)]
pub struct StatementRow {
    /// Image id (SNLI-VE) or pair id (NLVR2).
    pub sample_id: String,
    /// Split.
    pub split: String,
    /// snli-ve | nlvr2.
    pub dataset: String,
    /// The first (left) image.
    pub image: StoredImage,
    /// The second (right) image, for NLVR2.
    pub right: Option<StoredImage>,
    /// Per statement.
    pub statement_ids: Vec<String>,
    /// Per statement.
    pub statements: Vec<String>,
    /// Per statement.
    pub statement_tokens: Vec<Vec<i32>>,
    /// Per statement.
    pub labels: Vec<i32>,
    /// Per statement (SNLI-VE premise, else empty).
    pub premises: Vec<String>,
}

impl ShardRow for StatementRow {
    fn byte_size(&self) -> usize {
        let strings = |v: &[String]| v.iter().map(String::len).sum::<usize>();
        self.image.byte_size()
            + self.right.as_ref().map_or(0, StoredImage::byte_size)
            + self.sample_id.len()
            + 24
            + strings(&self.statement_ids)
            + strings(&self.statements)
            + strings(&self.premises)
            + self
                .statement_tokens
                .iter()
                .map(|t| 4 * t.len())
                .sum::<usize>()
            + 4 * self.labels.len()
    }

    fn to_batch(rows: &[Self], schema: &SchemaRef) -> Result<RecordBatch> {
        let mut sample_id = StringBuilder::new();
        let mut split = StringBuilder::new();
        let mut dataset = StringBuilder::new();
        let mut num_images = Int32Builder::new();
        let pixels = rows.iter().map(|r| r.image.image.len()).sum();
        let mut left = ImageColumns::new(rows.len(), pixels);
        let pixels = rows
            .iter()
            .map(|r| r.right.as_ref().map_or(0, |i| i.image.len()))
            .sum();
        let mut right = ImageColumns::new(rows.len(), pixels);
        let mut ids = ListBuilder::new(StringBuilder::new());
        let mut statements = ListBuilder::new(StringBuilder::new());
        let mut tokens = ListBuilder::new(ListBuilder::new(Int32Builder::new()));
        let mut labels = ListBuilder::new(Int32Builder::new());
        let mut premises = ListBuilder::new(StringBuilder::new());
        for r in rows {
            sample_id.append_value(&r.sample_id);
            split.append_value(&r.split);
            dataset.append_value(&r.dataset);
            num_images.append_value(1 + i32::from(r.right.is_some()));
            left.append(&r.image);
            match &r.right {
                Some(img) => right.append(img),
                None => right.append_null(),
            }
            append_strings(&mut ids, &r.statement_ids);
            append_strings(&mut statements, &r.statements);
            append_i32_lists(&mut tokens, &r.statement_tokens);
            append_i32s(&mut labels, &r.labels);
            append_strings(&mut premises, &r.premises);
        }
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(sample_id.finish()),
            Arc::new(split.finish()),
            Arc::new(dataset.finish()),
            Arc::new(num_images.finish()),
        ];
        columns.extend(left.finish());
        columns.extend(right.finish());
        columns.extend([
            Arc::new(ids.finish()) as ArrayRef,
            Arc::new(statements.finish()),
            Arc::new(tokens.finish()),
            Arc::new(labels.finish()),
            Arc::new(premises.finish()),
        ]);
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    }
}
