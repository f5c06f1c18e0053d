//! Pixel storage codecs: baseline JPEG (libjpeg-turbo) or raw uint8 HWC.

use serde::{Deserialize, Serialize};
use turbojpeg::{Compressor, Image, PixelFormat, Subsamp};

use super::decode::RgbImage;
use crate::error::{Error, Result};

/// How pixels are stored in the `image` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum PixelCodec {
    /// Baseline (sequential) JPEG, 4:2:0, at the pipeline's quality.
    Jpeg,
    /// Raw uint8 RGB, row-major HWC, `width * height * 3` bytes.
    Raw,
}

impl PixelCodec {
    /// The name stored in shards and manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            PixelCodec::Jpeg => "jpeg",
            PixelCodec::Raw => "raw",
        }
    }
}

/// Encodes pixels with `codec`. JPEG output is always baseline: progressive sources never reach the
/// loader.
pub fn encode_pixels(img: &RgbImage, codec: PixelCodec, jpeg_quality: u8) -> Result<Vec<u8>> {
    match codec {
        PixelCodec::Raw => Ok(img.pixels.clone()),
        PixelCodec::Jpeg => {
            let map = |e: turbojpeg::Error| Error::internal_caused("JPEG encode failed", e);
            let mut c = Compressor::new().map_err(map)?;
            c.set_quality(jpeg_quality as i32).map_err(map)?;
            c.set_subsamp(Subsamp::Sub2x2).map_err(map)?;
            let w = img.width as usize;
            let image = Image {
                pixels: &img.pixels[..],
                width: w,
                pitch: w * 3,
                height: img.height as usize,
                format: PixelFormat::RGB,
            };
            c.compress_to_vec(image).map_err(map)
        }
    }
}
