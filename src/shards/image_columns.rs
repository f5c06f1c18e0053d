//! The image columns every image schema shares (source path, hashes, sizes, codec, pixels), and
//! list-column helpers, so a task row type only writes its own columns.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, Float64Builder, Int32Builder, Int64Builder, ListBuilder, StringBuilder,
};

/// One stored image and where it came from (the shared columns, in schema order).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredImage {
    /// Path relative to the image root.
    pub source_path: String,
    /// blake3 of the source file.
    pub source_blake3: String,
    /// blake3 of the decoded pixels.
    pub pixel_blake3: String,
    /// dHash of the decoded pixels (16 hex digits).
    pub pixel_dhash: String,
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
}

impl StoredImage {
    /// Approximate in-memory size.
    pub fn byte_size(&self) -> usize {
        self.image.len() + self.source_path.len() + 144 + 24
    }
}

/// Builders for the shared image columns.
pub struct ImageColumns {
    source_path: StringBuilder,
    source_blake3: StringBuilder,
    pixel_blake3: StringBuilder,
    pixel_dhash: StringBuilder,
    orig_width: Int32Builder,
    orig_height: Int32Builder,
    width: Int32Builder,
    height: Int32Builder,
    image_codec: StringBuilder,
    image: BinaryBuilder,
}

impl ImageColumns {
    /// Builders sized for `rows` rows of `bytes` pixel bytes in all.
    pub fn new(rows: usize, bytes: usize) -> Self {
        ImageColumns {
            source_path: StringBuilder::new(),
            source_blake3: StringBuilder::new(),
            pixel_blake3: StringBuilder::new(),
            pixel_dhash: StringBuilder::new(),
            orig_width: Int32Builder::new(),
            orig_height: Int32Builder::new(),
            width: Int32Builder::new(),
            height: Int32Builder::new(),
            image_codec: StringBuilder::new(),
            image: BinaryBuilder::with_capacity(rows, bytes),
        }
    }

    /// Appends one image.
    pub fn append(&mut self, img: &StoredImage) {
        self.source_path.append_value(&img.source_path);
        self.source_blake3.append_value(&img.source_blake3);
        self.pixel_blake3.append_value(&img.pixel_blake3);
        self.pixel_dhash.append_value(&img.pixel_dhash);
        self.orig_width.append_value(img.orig_width as i32);
        self.orig_height.append_value(img.orig_height as i32);
        self.width.append_value(img.width as i32);
        self.height.append_value(img.height as i32);
        self.image_codec.append_value(img.image_codec);
        self.image.append_value(&img.image);
    }

    /// Appends nulls (a row without this image; the columns must be nullable).
    pub fn append_null(&mut self) {
        self.source_path.append_null();
        self.source_blake3.append_null();
        self.pixel_blake3.append_null();
        self.pixel_dhash.append_null();
        self.orig_width.append_null();
        self.orig_height.append_null();
        self.width.append_null();
        self.height.append_null();
        self.image_codec.append_null();
        self.image.append_null();
    }

    /// The ten arrays in schema order.
    pub fn finish(mut self) -> Vec<ArrayRef> {
        vec![
            Arc::new(self.source_path.finish()),
            Arc::new(self.source_blake3.finish()),
            Arc::new(self.pixel_blake3.finish()),
            Arc::new(self.pixel_dhash.finish()),
            Arc::new(self.orig_width.finish()),
            Arc::new(self.orig_height.finish()),
            Arc::new(self.width.finish()),
            Arc::new(self.height.finish()),
            Arc::new(self.image_codec.finish()),
            Arc::new(self.image.finish()),
        ]
    }
}

/// Appends one `list<utf8>` value.
pub fn append_strings(b: &mut ListBuilder<StringBuilder>, values: &[String]) {
    for v in values {
        b.values().append_value(v);
    }
    b.append(true);
}

/// Appends one `list<int64>` value.
pub fn append_i64s(b: &mut ListBuilder<Int64Builder>, values: &[i64]) {
    b.values().append_slice(values);
    b.append(true);
}

/// Appends one `list<int32>` value.
pub fn append_i32s(b: &mut ListBuilder<Int32Builder>, values: &[i32]) {
    b.values().append_slice(values);
    b.append(true);
}

/// Appends one `list<list<int32>>` value.
pub fn append_i32_lists(b: &mut ListBuilder<ListBuilder<Int32Builder>>, values: &[Vec<i32>]) {
    for v in values {
        b.values().values().append_slice(v);
        b.values().append(true);
    }
    b.append(true);
}

/// Appends one `list<list<utf8>>` value.
pub fn append_string_lists(
    b: &mut ListBuilder<ListBuilder<StringBuilder>>,
    values: &[Vec<String>],
) {
    for v in values {
        for s in v {
            b.values().values().append_value(s);
        }
        b.values().append(true);
    }
    b.append(true);
}

/// Appends one `list<list<float64>>` value.
pub fn append_f64_lists(b: &mut ListBuilder<ListBuilder<Float64Builder>>, values: &[Vec<f64>]) {
    for v in values {
        b.values().values().append_slice(v);
        b.values().append(true);
    }
    b.append(true);
}
