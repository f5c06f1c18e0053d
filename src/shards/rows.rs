//! Typed rows and their conversion to Arrow record batches, one type per schema family.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, Int32Builder, ListBuilder, RecordBatch, StringBuilder,
};
use arrow::datatypes::SchemaRef;

use crate::error::Result;

/// A row type the [`super::ShardWriter`] can write.
pub trait ShardRow: Send {
    /// Approximate in-memory size in bytes, used to cut row groups and shards deterministically.
    fn byte_size(&self) -> usize;
    /// Builds a record batch of `rows` conforming to `schema`.
    fn to_batch(rows: &[Self], schema: &SchemaRef) -> Result<RecordBatch>
    where
        Self: Sized;
}

/// A row of the `image_text.v1` schema (see `schemas/image_text.v1.json` for each column).
#[derive(Debug, Clone, PartialEq)]
pub struct ImageTextRow {
    /// Image id as given by the annotations.
    pub image_id: String,
    /// Split name.
    pub split: String,
    /// Path relative to the image root.
    pub source_path: String,
    /// blake3 of the source file.
    pub source_blake3: String,
    /// blake3 of the decoded pixels.
    pub pixel_blake3: String,
    /// Displayed source size.
    pub orig_width: u32,
    /// Displayed source size.
    pub orig_height: u32,
    /// Stored size.
    pub width: u32,
    /// Stored size.
    pub height: u32,
    /// `jpeg` or `raw`.
    pub image_codec: &'static str,
    /// Stored pixels.
    pub image: Vec<u8>,
    /// Raw captions.
    pub captions: Vec<String>,
    /// Token ids per caption.
    pub caption_tokens: Vec<Vec<i32>>,
}

impl ShardRow for ImageTextRow {
    fn byte_size(&self) -> usize {
        self.image.len()
            + self.image_id.len()
            + self.split.len()
            + self.source_path.len()
            + 128 // two hex hashes
            + 16
            + self.captions.iter().map(String::len).sum::<usize>()
            + self.caption_tokens.iter().map(|t| 4 * t.len()).sum::<usize>()
    }

    fn to_batch(rows: &[Self], schema: &SchemaRef) -> Result<RecordBatch> {
        let mut image_id = StringBuilder::new();
        let mut split = StringBuilder::new();
        let mut source_path = StringBuilder::new();
        let mut source_blake3 = StringBuilder::new();
        let mut pixel_blake3 = StringBuilder::new();
        let mut orig_width = Int32Builder::new();
        let mut orig_height = Int32Builder::new();
        let mut width = Int32Builder::new();
        let mut height = Int32Builder::new();
        let mut image_codec = StringBuilder::new();
        let mut image =
            BinaryBuilder::with_capacity(rows.len(), rows.iter().map(|r| r.image.len()).sum());
        let mut captions = ListBuilder::new(StringBuilder::new());
        let mut tokens = ListBuilder::new(ListBuilder::new(Int32Builder::new()));
        for r in rows {
            image_id.append_value(&r.image_id);
            split.append_value(&r.split);
            source_path.append_value(&r.source_path);
            source_blake3.append_value(&r.source_blake3);
            pixel_blake3.append_value(&r.pixel_blake3);
            orig_width.append_value(r.orig_width as i32);
            orig_height.append_value(r.orig_height as i32);
            width.append_value(r.width as i32);
            height.append_value(r.height as i32);
            image_codec.append_value(r.image_codec);
            image.append_value(&r.image);
            for c in &r.captions {
                captions.values().append_value(c);
            }
            captions.append(true);
            for t in &r.caption_tokens {
                tokens.values().values().append_slice(t);
                tokens.values().append(true);
            }
            tokens.append(true);
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(image_id.finish()),
            Arc::new(split.finish()),
            Arc::new(source_path.finish()),
            Arc::new(source_blake3.finish()),
            Arc::new(pixel_blake3.finish()),
            Arc::new(orig_width.finish()),
            Arc::new(orig_height.finish()),
            Arc::new(width.finish()),
            Arc::new(height.finish()),
            Arc::new(image_codec.finish()),
            Arc::new(image.finish()),
            Arc::new(captions.finish()),
            Arc::new(tokens.finish()),
        ];
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    }
}
