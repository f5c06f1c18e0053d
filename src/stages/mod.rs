//! Per-sample stages: raw bytes → decoded RGB → oriented → resized → encoded pixels.
//!
//! Flow position: `sources` → **stages** → `shards`. Every stage is a pure function of its input and
//! config, so the engine can run them on any thread and still write byte-identical shards.

pub mod decode;
pub mod dhash;
pub mod encode;
pub mod image;
pub mod orient;
pub mod pillow_resize;
pub mod png_chunks;
pub mod resize;

pub use decode::{DecodeError, RgbImage, decode_rgb, decode_stored};
pub use encode::{PixelCodec, encode_pixels};
pub use image::{ImageOptions, ImageStage, ProcessedImage};
pub use resize::{fit_within, resize_rgb};
