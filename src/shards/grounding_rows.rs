//! Rows of `image_grounding.v1` (see `schemas/image_grounding.v1.json` for each column).

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Builder, Int32Builder, Int64Builder, ListBuilder, RecordBatch, StringBuilder,
};
use arrow::datatypes::SchemaRef;

use super::image_columns::{
    ImageColumns, StoredImage, append_f64_lists, append_i32_lists, append_i32s, append_i64s,
    append_strings,
};
use super::rows::ShardRow;
use crate::error::Result;

/// One image with its referred objects and expressions.
#[derive(Debug, Clone, PartialEq)]
pub struct GroundingRow {
    /// COCO image id.
    pub image_id: String,
    /// Split.
    pub split: String,
    /// refcoco | refcoco+ | refcocog.
    pub dataset: String,
    /// unc | umd | google.
    pub split_by: String,
    /// The image.
    pub image: StoredImage,
    /// Per object.
    pub ref_ids: Vec<i64>,
    /// Per object.
    pub ann_ids: Vec<i64>,
    /// Per object.
    pub category_ids: Vec<i32>,
    /// Per object: [x, y, w, h] in source pixels.
    pub boxes: Vec<Vec<f64>>,
    /// Per expression.
    pub sentence_ids: Vec<i64>,
    /// Per expression: index of its object.
    pub sentence_refs: Vec<i32>,
    /// Per expression.
    pub sentences: Vec<String>,
    /// Per expression.
    pub sentence_tokens: Vec<Vec<i32>>,
}

impl ShardRow for GroundingRow {
    fn byte_size(&self) -> usize {
        self.image.byte_size()
            + self.image_id.len()
            + 32
            + 56 * self.ref_ids.len()
            + 12 * self.sentence_ids.len()
            + self.sentences.iter().map(String::len).sum::<usize>()
            + self
                .sentence_tokens
                .iter()
                .map(|t| 4 * t.len())
                .sum::<usize>()
    }

    fn to_batch(rows: &[Self], schema: &SchemaRef) -> Result<RecordBatch> {
        let mut image_id = StringBuilder::new();
        let mut split = StringBuilder::new();
        let mut dataset = StringBuilder::new();
        let mut split_by = StringBuilder::new();
        let pixels = rows.iter().map(|r| r.image.image.len()).sum();
        let mut images = ImageColumns::new(rows.len(), pixels);
        let mut ref_ids = ListBuilder::new(Int64Builder::new());
        let mut ann_ids = ListBuilder::new(Int64Builder::new());
        let mut cats = ListBuilder::new(Int32Builder::new());
        let mut boxes = ListBuilder::new(ListBuilder::new(Float64Builder::new()));
        let mut sent_ids = ListBuilder::new(Int64Builder::new());
        let mut sent_refs = ListBuilder::new(Int32Builder::new());
        let mut sentences = ListBuilder::new(StringBuilder::new());
        let mut tokens = ListBuilder::new(ListBuilder::new(Int32Builder::new()));
        for r in rows {
            image_id.append_value(&r.image_id);
            split.append_value(&r.split);
            dataset.append_value(&r.dataset);
            split_by.append_value(&r.split_by);
            images.append(&r.image);
            append_i64s(&mut ref_ids, &r.ref_ids);
            append_i64s(&mut ann_ids, &r.ann_ids);
            append_i32s(&mut cats, &r.category_ids);
            append_f64_lists(&mut boxes, &r.boxes);
            append_i64s(&mut sent_ids, &r.sentence_ids);
            append_i32s(&mut sent_refs, &r.sentence_refs);
            append_strings(&mut sentences, &r.sentences);
            append_i32_lists(&mut tokens, &r.sentence_tokens);
        }
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(image_id.finish()),
            Arc::new(split.finish()),
            Arc::new(dataset.finish()),
            Arc::new(split_by.finish()),
        ];
        columns.extend(images.finish());
        columns.extend([
            Arc::new(ref_ids.finish()) as ArrayRef,
            Arc::new(ann_ids.finish()),
            Arc::new(cats.finish()),
            Arc::new(boxes.finish()),
            Arc::new(sent_ids.finish()),
            Arc::new(sent_refs.finish()),
            Arc::new(sentences.finish()),
            Arc::new(tokens.finish()),
        ]);
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    }
}
