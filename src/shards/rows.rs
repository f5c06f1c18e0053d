//! Typed rows and their conversion to Arrow record batches, one type per schema family.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, Float64Builder, Int32Builder, Int64Builder, ListBuilder, RecordBatch,
    StringBuilder,
};
use arrow::datatypes::SchemaRef;

use super::image_columns::{ImageColumns, StoredImage, append_i32_lists, append_strings};
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
    /// The stored image (the shared image columns).
    pub image: StoredImage,
    /// Raw captions.
    pub captions: Vec<String>,
    /// Token ids per caption.
    pub caption_tokens: Vec<Vec<i32>>,
}

impl ShardRow for ImageTextRow {
    // Not `StoredImage::byte_size`: this sum decides where row groups and shards are cut, so it
    // stays what image_text.v1 datasets were written with (changing it changes their bytes).
    fn byte_size(&self) -> usize {
        self.image.image.len()
            + self.image_id.len()
            + self.split.len()
            + self.image.source_path.len()
            + 144 // three hex hashes
            + 16
            + self.captions.iter().map(String::len).sum::<usize>()
            + self.caption_tokens.iter().map(|t| 4 * t.len()).sum::<usize>()
    }

    fn to_batch(rows: &[Self], schema: &SchemaRef) -> Result<RecordBatch> {
        let mut image_id = StringBuilder::new();
        let mut split = StringBuilder::new();
        let mut images =
            ImageColumns::new(rows.len(), rows.iter().map(|r| r.image.image.len()).sum());
        let mut captions = ListBuilder::new(StringBuilder::new());
        let mut tokens = ListBuilder::new(ListBuilder::new(Int32Builder::new()));
        for r in rows {
            image_id.append_value(&r.image_id);
            split.append_value(&r.split);
            images.append(&r.image);
            append_strings(&mut captions, &r.captions);
            append_i32_lists(&mut tokens, &r.caption_tokens);
        }
        let mut columns: Vec<ArrayRef> =
            vec![Arc::new(image_id.finish()), Arc::new(split.finish())];
        columns.extend(images.finish());
        columns.extend([
            Arc::new(captions.finish()) as ArrayRef,
            Arc::new(tokens.finish()),
        ]);
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    }
}

/// A row of the `video_text.v1` schema (see `schemas/video_text.v1.json` for each column).
#[derive(Debug, Clone, PartialEq)]
pub struct VideoTextRow {
    /// Clip id.
    pub video_id: String,
    /// Split name.
    pub split: String,
    /// Path relative to the video root.
    pub source_path: String,
    /// blake3 of the file.
    pub source_blake3: String,
    /// blake3 of the stored frames' decoded pixels.
    pub pixel_blake3: String,
    /// FFmpeg codec name.
    pub video_codec: String,
    /// Duration, seconds.
    pub duration_s: f64,
    /// Average frame rate.
    pub fps: f64,
    /// Frames in the clip.
    pub num_frames_total: i32,
    /// Variable frame rate flag.
    pub variable_frame_rate: bool,
    /// Clockwise rotation applied.
    pub rotation: i32,
    /// Displayed size.
    pub orig_width: u32,
    /// Displayed size.
    pub orig_height: u32,
    /// Stored size.
    pub width: u32,
    /// Stored size.
    pub height: u32,
    /// `jpeg` or `raw`.
    pub frame_codec: &'static str,
    /// Frame indices.
    pub frame_indices: Vec<i32>,
    /// Frame times, seconds.
    pub frame_times: Vec<f64>,
    /// Encoded frames.
    pub frames: Vec<Vec<u8>>,
    /// Captions.
    pub captions: Vec<String>,
    /// Caption token ids.
    pub caption_tokens: Vec<Vec<i32>>,
    /// Question ids.
    pub question_ids: Vec<i64>,
    /// Questions.
    pub questions: Vec<String>,
    /// Question token ids.
    pub question_tokens: Vec<Vec<i32>>,
    /// Answers.
    pub answers: Vec<String>,
}

impl ShardRow for VideoTextRow {
    fn byte_size(&self) -> usize {
        self.frames.iter().map(Vec::len).sum::<usize>()
            + self.video_id.len()
            + self.split.len()
            + self.source_path.len()
            + 128
            + 64
            + 12 * self.frame_indices.len()
            + self.captions.iter().map(String::len).sum::<usize>()
            + self
                .caption_tokens
                .iter()
                .map(|t| 4 * t.len())
                .sum::<usize>()
            + self.questions.iter().map(String::len).sum::<usize>()
            + self
                .question_tokens
                .iter()
                .map(|t| 4 * t.len())
                .sum::<usize>()
            + self.answers.iter().map(String::len).sum::<usize>()
            + 8 * self.question_ids.len()
    }

    fn to_batch(rows: &[Self], schema: &SchemaRef) -> Result<RecordBatch> {
        let s = || StringBuilder::new();
        let (mut video_id, mut split, mut source_path, mut source_blake3) = (s(), s(), s(), s());
        let (mut pixel_blake3, mut video_codec, mut frame_codec) = (s(), s(), s());
        let (mut duration, mut fps) = (Float64Builder::new(), Float64Builder::new());
        let i = || Int32Builder::new();
        let (mut total, mut vfr, mut rotation) = (i(), i(), i());
        let (mut orig_w, mut orig_h, mut w, mut h) = (i(), i(), i(), i());
        let mut indices = ListBuilder::new(Int32Builder::new());
        let mut times = ListBuilder::new(Float64Builder::new());
        let mut frames = ListBuilder::new(BinaryBuilder::new());
        let mut captions = ListBuilder::new(StringBuilder::new());
        let mut caption_tokens = ListBuilder::new(ListBuilder::new(Int32Builder::new()));
        let mut question_ids = ListBuilder::new(Int64Builder::new());
        let mut questions = ListBuilder::new(StringBuilder::new());
        let mut question_tokens = ListBuilder::new(ListBuilder::new(Int32Builder::new()));
        let mut answers = ListBuilder::new(StringBuilder::new());
        for r in rows {
            video_id.append_value(&r.video_id);
            split.append_value(&r.split);
            source_path.append_value(&r.source_path);
            source_blake3.append_value(&r.source_blake3);
            pixel_blake3.append_value(&r.pixel_blake3);
            video_codec.append_value(&r.video_codec);
            duration.append_value(r.duration_s);
            fps.append_value(r.fps);
            total.append_value(r.num_frames_total);
            vfr.append_value(i32::from(r.variable_frame_rate));
            rotation.append_value(r.rotation);
            orig_w.append_value(r.orig_width as i32);
            orig_h.append_value(r.orig_height as i32);
            w.append_value(r.width as i32);
            h.append_value(r.height as i32);
            frame_codec.append_value(r.frame_codec);
            indices.values().append_slice(&r.frame_indices);
            indices.append(true);
            times.values().append_slice(&r.frame_times);
            times.append(true);
            for f in &r.frames {
                frames.values().append_value(f);
            }
            frames.append(true);
            append_strings(&mut captions, &r.captions);
            append_i32_lists(&mut caption_tokens, &r.caption_tokens);
            question_ids.values().append_slice(&r.question_ids);
            question_ids.append(true);
            append_strings(&mut questions, &r.questions);
            append_i32_lists(&mut question_tokens, &r.question_tokens);
            append_strings(&mut answers, &r.answers);
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(video_id.finish()),
            Arc::new(split.finish()),
            Arc::new(source_path.finish()),
            Arc::new(source_blake3.finish()),
            Arc::new(pixel_blake3.finish()),
            Arc::new(video_codec.finish()),
            Arc::new(duration.finish()),
            Arc::new(fps.finish()),
            Arc::new(total.finish()),
            Arc::new(vfr.finish()),
            Arc::new(rotation.finish()),
            Arc::new(orig_w.finish()),
            Arc::new(orig_h.finish()),
            Arc::new(w.finish()),
            Arc::new(h.finish()),
            Arc::new(frame_codec.finish()),
            Arc::new(indices.finish()),
            Arc::new(times.finish()),
            Arc::new(frames.finish()),
            Arc::new(captions.finish()),
            Arc::new(caption_tokens.finish()),
            Arc::new(question_ids.finish()),
            Arc::new(questions.finish()),
            Arc::new(question_tokens.finish()),
            Arc::new(answers.finish()),
        ];
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    }
}
