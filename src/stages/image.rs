//! The image stage: file bytes → hash → decode → EXIF orientation → resize → encode.

use serde::{Deserialize, Serialize};

use super::decode::{DecodeError, decode_rgb_draft};
use super::dhash::dhash_hex;
use super::encode::{PixelCodec, encode_pixels};
use super::orient::{apply_orientation, exif_orientation};
use super::resize::{fit_within, resize_rgb};
use crate::error::Result;

/// Image settings of a pipeline (the `[image]` table of a pipeline file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageOptions {
    /// Longest stored side in pixels; larger images are downscaled, smaller ones kept (0 = keep all).
    pub max_side: u32,
    /// Storage codec.
    pub codec: PixelCodec,
    /// JPEG quality (1..=100) when `codec = "jpeg"`.
    pub jpeg_quality: u8,
    /// Images whose header declares more pixels than this are rejected before decoding.
    pub max_pixels: u64,
    /// Decode large JPEGs in the DCT domain at 1/2..1/8 scale when they are at least twice
    /// `max_side` (Pillow's `thumbnail`), for multi-megapixel web originals. Off by default: with it
    /// on, stored pixels no longer match a full decode + bicubic resize within one grey level.
    #[serde(default)]
    pub dct_downscale: bool,
}

impl Default for ImageOptions {
    fn default() -> Self {
        // 512: RandomResizedCrop(384, scale=(0.5, 1)) crops ≥ 0.71 of each side, i.e. ≥ 362 px of a
        // 512-px image, so 384-px training never upscales a crop by more than ~6%.
        // 89,478,485: Pillow's MAX_IMAGE_PIXELS, the limit the reference runs with.
        Self {
            max_side: 512,
            codec: PixelCodec::Jpeg,
            jpeg_quality: 95,
            max_pixels: 89_478_485,
            dct_downscale: false,
        }
    }
}

/// What the image stage produces for one file.
#[derive(Debug, Clone)]
pub struct ProcessedImage {
    /// blake3 of the source file bytes (hex).
    pub source_blake3: String,
    /// blake3 of the decoded, oriented RGB pixels and their size (hex): equal for re-encoded copies
    /// only when decoding gives identical pixels.
    pub pixel_blake3: String,
    /// dHash of the decoded, oriented pixels (16 hex digits; see [`super::dhash`]): equal for
    /// re-encoded and resized copies.
    pub pixel_dhash: String,
    /// Displayed size of the source (after EXIF orientation).
    pub orig_width: u32,
    /// Displayed size of the source (after EXIF orientation).
    pub orig_height: u32,
    /// Stored size.
    pub width: u32,
    /// Stored size.
    pub height: u32,
    /// Encoded pixels.
    pub data: Vec<u8>,
}

/// Decodes, orients, resizes and re-encodes images according to [`ImageOptions`].
#[derive(Debug, Clone)]
pub struct ImageStage {
    options: ImageOptions,
}

impl ImageStage {
    /// A stage with these options.
    pub fn new(options: ImageOptions) -> Self {
        Self { options }
    }

    /// Processes one file's bytes. `Ok(Err(_))` is a rejected input; `Err(_)` a run failure.
    pub fn process(
        &self,
        bytes: &[u8],
    ) -> Result<std::result::Result<ProcessedImage, DecodeError>> {
        let source_blake3 = blake3::hash(bytes).to_hex().to_string();
        let draft = if self.options.dct_downscale {
            self.options.max_side
        } else {
            0
        };
        let (decoded, (full_w, full_h)) =
            match decode_rgb_draft(bytes, self.options.max_pixels, draft) {
                Ok(d) => d,
                Err(e) => return Ok(Err(e)),
            };
        let orientation = exif_orientation(bytes);
        let img = apply_orientation(decoded, orientation);
        // Displayed size of the full-resolution source (orientations 5..8 transpose).
        let (orig_width, orig_height) = if (5..=8).contains(&orientation) {
            (full_h, full_w)
        } else {
            (full_w, full_h)
        };
        let mut hasher = blake3::Hasher::new();
        hasher.update(&img.width.to_le_bytes());
        hasher.update(&img.height.to_le_bytes());
        hasher.update(&img.pixels);
        let pixel_blake3 = hasher.finalize().to_hex().to_string();
        // From the full size, so a DCT draft decode stores the same dimensions as a full decode.
        let (w, h) = fit_within(orig_width, orig_height, self.options.max_side);
        let resized = resize_rgb(&img, w, h);
        let data = encode_pixels(&resized, self.options.codec, self.options.jpeg_quality)?;
        Ok(Ok(ProcessedImage {
            source_blake3,
            pixel_blake3,
            pixel_dhash: dhash_hex(&img),
            orig_width,
            orig_height,
            width: w,
            height: h,
            data,
        }))
    }
}
