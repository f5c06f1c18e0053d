//! Decoding any supported image file to 8-bit RGB, Pillow-compatible.
//!
//! JPEG goes through libjpeg-turbo (bit-exact with Pillow's decoder); other formats through the `image`
//! crate. Alpha is dropped and grey replicated, as Pillow's `.convert("RGB")` does, which is what the
//! reference's dataset classes call.

use std::io::Cursor;

use turbojpeg::{Colorspace, Decompressor, Image, PixelFormat, ScalingFactor};

/// An 8-bit RGB image, rows packed (HWC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbImage {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 3` bytes.
    pub pixels: Vec<u8>,
}

/// Why an image could not be decoded. These become reject reasons, not run failures.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The file has no bytes.
    #[error("empty file (0 bytes)")]
    Empty,
    /// Not a format we recognise.
    #[error("not an image (unrecognised format)")]
    NotAnImage,
    /// The header declares more pixels than allowed.
    #[error(
        "image is {width}x{height} = {pixels} pixels, over the limit of {limit} (decompression bomb guard)"
    )]
    TooLarge {
        /// Declared width.
        width: u64,
        /// Declared height.
        height: u64,
        /// width * height.
        pixels: u64,
        /// The configured limit.
        limit: u64,
    },
    /// A metadata chunk inflates past the cap Pillow applies, so the reference rejects the file too;
    /// decoding it would only spend memory (a few KB can inflate to gigabytes).
    #[error(
        "{format} {chunk} chunk inflates to more than {limit} bytes (metadata bomb guard, as Pillow)"
    )]
    MetadataBomb {
        /// The container format.
        format: &'static str,
        /// The chunk type (or "text chunks" for the total).
        chunk: String,
        /// The cap in bytes.
        limit: u64,
    },
    /// The decoder failed (truncated or corrupt data).
    #[error("corrupt or truncated {format}: {message}")]
    Corrupt {
        /// The container format.
        format: &'static str,
        /// The decoder's message.
        message: String,
    },
}

/// Image container formats recognised by their magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    /// JFIF/EXIF JPEG.
    Jpeg,
    /// Any other format the `image` crate decodes (PNG, WebP, GIF, BMP, TIFF).
    Other(image::ImageFormat),
}

/// Recognises the container from the first bytes.
pub fn sniff(bytes: &[u8]) -> Option<SourceFormat> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some(SourceFormat::Jpeg);
    }
    match image::guess_format(bytes) {
        Ok(
            f @ (image::ImageFormat::Png
            | image::ImageFormat::WebP
            | image::ImageFormat::Gif
            | image::ImageFormat::Bmp
            | image::ImageFormat::Tiff),
        ) => Some(SourceFormat::Other(f)),
        _ => None,
    }
}

fn check_pixels(width: u64, height: u64, limit: u64) -> Result<(), DecodeError> {
    let pixels = width.saturating_mul(height);
    if pixels > limit {
        return Err(DecodeError::TooLarge {
            width,
            height,
            pixels,
            limit,
        });
    }
    Ok(())
}

/// Pixels as the shards store them (`image_codec` / `frame_codec`): `raw` uint8 RGB HWC of the given
/// size, otherwise encoded bytes to decode. The loader, the evaluator and `mplug show` read them so.
pub fn decode_stored(
    bytes: &[u8],
    codec: &str,
    width: u32,
    height: u32,
) -> Result<RgbImage, DecodeError> {
    match codec {
        "raw" => Ok(RgbImage {
            width,
            height,
            pixels: bytes.to_vec(),
        }),
        _ => decode_rgb(bytes, u64::MAX),
    }
}

/// Decodes `bytes` to RGB, refusing images whose header declares more than `max_pixels` pixels before
/// any pixel memory is allocated. EXIF orientation is *not* applied here (see `orient`).
pub fn decode_rgb(bytes: &[u8], max_pixels: u64) -> Result<RgbImage, DecodeError> {
    decode_rgb_draft(bytes, max_pixels, 0).map(|(img, _)| img)
}

/// Like [`decode_rgb`], but a JPEG whose longer side is at least `2 * draft_long_side` is decoded in
/// the DCT domain at 1/2, 1/4 or 1/8 scale: the strongest reduction that keeps the longer side at
/// least `2 * draft_long_side`. This is Pillow's `Image.thumbnail` (`draft` with `reducing_gap=2`);
/// the gap of 2 leaves the final bicubic resize enough pixels that the result is visually the same,
/// at a fraction of the decode cost for multi-megapixel web originals. `0` disables it. Also returns
/// the full (undecoded-scale) width and height from the header.
pub fn decode_rgb_draft(
    bytes: &[u8],
    max_pixels: u64,
    draft_long_side: u32,
) -> Result<(RgbImage, (u32, u32)), DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    match sniff(bytes).ok_or(DecodeError::NotAnImage)? {
        SourceFormat::Jpeg => decode_jpeg(bytes, max_pixels, draft_long_side),
        SourceFormat::Other(format) => {
            let img = decode_other(bytes, format, max_pixels)?;
            let full = (img.width, img.height);
            Ok((img, full))
        }
    }
}

/// The DCT scaling factor for a `width` x `height` JPEG (see [`decode_rgb_draft`]).
pub fn draft_factor(width: usize, height: usize, draft_long_side: u32) -> ScalingFactor {
    if draft_long_side == 0 {
        return ScalingFactor::ONE;
    }
    let need = 2 * draft_long_side as usize;
    [
        ScalingFactor::ONE_EIGHTH,
        ScalingFactor::ONE_QUARTER,
        ScalingFactor::ONE_HALF,
    ]
    .into_iter()
    .find(|f| f.scale(width.max(height)) >= need)
    .unwrap_or(ScalingFactor::ONE)
}

fn corrupt_jpeg(e: turbojpeg::Error) -> DecodeError {
    DecodeError::Corrupt {
        format: "JPEG",
        message: e.to_string(),
    }
}

fn decode_jpeg(
    bytes: &[u8],
    max_pixels: u64,
    draft_long_side: u32,
) -> Result<(RgbImage, (u32, u32)), DecodeError> {
    let mut dec = Decompressor::new().map_err(corrupt_jpeg)?;
    let header = dec.read_header(bytes).map_err(corrupt_jpeg)?;
    check_pixels(header.width as u64, header.height as u64, max_pixels)?;
    let factor = draft_factor(header.width, header.height, draft_long_side);
    dec.set_scaling_factor(factor).map_err(corrupt_jpeg)?;
    let (w, h) = (factor.scale(header.width), factor.scale(header.height));
    let full = (header.width as u32, header.height as u32);
    if matches!(header.colorspace, Colorspace::CMYK | Colorspace::YCCK) {
        let mut cmyk = vec![0u8; w * h * 4];
        let out = Image {
            pixels: &mut cmyk[..],
            width: w,
            pitch: w * 4,
            height: h,
            format: PixelFormat::CMYK,
        };
        dec.decompress(bytes, out).map_err(corrupt_jpeg)?;
        let inverted = has_adobe_marker(bytes);
        let img = RgbImage {
            width: w as u32,
            height: h as u32,
            pixels: cmyk_to_rgb(&cmyk, inverted),
        };
        return Ok((img, full));
    }
    let mut rgb = vec![0u8; w * h * 3];
    let out = Image {
        pixels: &mut rgb[..],
        width: w,
        pitch: w * 3,
        height: h,
        format: PixelFormat::RGB,
    };
    dec.decompress(bytes, out).map_err(corrupt_jpeg)?;
    let img = RgbImage {
        width: w as u32,
        height: h as u32,
        pixels: rgb,
    };
    Ok((img, full))
}

/// True when the JPEG carries an Adobe APP14 segment. Photoshop-style CMYK JPEGs (the ones with this
/// marker) store inverted values; Pillow reads them with raw mode `CMYK;I` for that reason.
fn has_adobe_marker(bytes: &[u8]) -> bool {
    let mut i = 2;
    while i + 4 <= bytes.len() && bytes[i] == 0xFF {
        let marker = bytes[i + 1];
        if marker == 0xDA || marker == 0xD9 {
            break; // start of scan: no more header segments
        }
        let len = u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]) as usize;
        if marker == 0xEE && bytes.get(i + 4..i + 9) == Some(b"Adobe") {
            return true;
        }
        i += 2 + len;
    }
    false
}

/// Pillow's `cmyk2rgb` (libImaging/Convert.c): `out = 255 - min(255, c + k)` per channel in its
/// MULDIV255 form, applied after undoing Adobe's inversion.
fn cmyk_to_rgb(cmyk: &[u8], inverted: bool) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(cmyk.len() / 4 * 3);
    for px in cmyk.chunks_exact(4) {
        let [mut c, mut m, mut y, mut k] = [px[0], px[1], px[2], px[3]];
        if inverted {
            [c, m, y, k] = [255 - c, 255 - m, 255 - y, 255 - k];
        }
        let nk = 255 - k as i32;
        for v in [c, m, y] {
            // CLIP8(nk - MULDIV255(v, nk)) with MULDIV255(a, b) = ((a*b + 128) + ((a*b + 128) >> 8)) >> 8
            let t = v as i32 * nk + 128;
            let muldiv = (t + (t >> 8)) >> 8;
            rgb.push((nk - muldiv).clamp(0, 255) as u8);
        }
    }
    rgb
}

fn decode_other(
    bytes: &[u8],
    format: image::ImageFormat,
    max_pixels: u64,
) -> Result<RgbImage, DecodeError> {
    let name = match format {
        image::ImageFormat::Png => "PNG",
        image::ImageFormat::WebP => "WebP",
        image::ImageFormat::Gif => "GIF",
        image::ImageFormat::Bmp => "BMP",
        image::ImageFormat::Tiff => "TIFF",
        _ => "image",
    };
    let corrupt = |e: image::ImageError| DecodeError::Corrupt {
        format: name,
        message: e.to_string(),
    };
    if format == image::ImageFormat::Png {
        super::png_chunks::check_metadata(bytes)?;
    }
    let reader = image::ImageReader::with_format(Cursor::new(bytes), format);
    let (w, h) = reader.into_dimensions().map_err(corrupt)?;
    check_pixels(w as u64, h as u64, max_pixels)?;
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), format);
    // The pixel limit above is ours; the allocation cap follows from it (16-bit RGBA is the widest
    // buffer a decoder builds, plus room for palettes, strips and metadata), so no file under the
    // pixel limit is refused and no file can allocate without bound.
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(max_pixels.saturating_mul(8).saturating_add(64 << 20));
    reader.limits(limits);
    let img = reader.decode().map_err(corrupt)?;
    Ok(to_rgb_like_pillow(img))
}

/// Pillow's `convert("RGB")` of what it opened: 16-bit grey opens as mode `I;16`, whose conversion
/// clips each value to 255; 16-bit colour (and grey with alpha) opens through raw modes that keep the
/// high byte. The `image` crate rescales both (`v / 257`), which would differ by up to 254 levels.
/// Everything 8-bit converts alike: alpha dropped, grey replicated, palettes expanded.
fn to_rgb_like_pillow(img: image::DynamicImage) -> RgbImage {
    let (width, height) = (img.width(), img.height());
    let pixels = match img {
        image::DynamicImage::ImageLuma16(g) => g
            .into_raw()
            .into_iter()
            .flat_map(|v| [v.min(255) as u8; 3])
            .collect(),
        image::DynamicImage::ImageLumaA16(g) => g
            .into_raw()
            .chunks_exact(2)
            .flat_map(|p| [(p[0] >> 8) as u8; 3])
            .collect(),
        image::DynamicImage::ImageRgb16(c) => c.into_raw().iter().map(|v| (v >> 8) as u8).collect(),
        image::DynamicImage::ImageRgba16(c) => c
            .into_raw()
            .chunks_exact(4)
            .flat_map(|p| [(p[0] >> 8) as u8, (p[1] >> 8) as u8, (p[2] >> 8) as u8])
            .collect(),
        other => other.into_rgb8().into_raw(),
    };
    RgbImage {
        width,
        height,
        pixels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draft_factor_keeps_twice_the_target() {
        let f = |w, h, t| {
            let s = draft_factor(w, h, t);
            (s.num(), s.denom())
        };
        assert_eq!(f(2048, 1536, 512), (1, 2)); // 1024 >= 1024; 1/4 would give 512
        assert_eq!(f(4096, 3072, 512), (1, 4));
        assert_eq!(f(1536, 4096, 512), (1, 4)); // portrait: the longer side counts
        assert_eq!(f(8192, 100, 256), (1, 8));
        assert_eq!(f(1000, 800, 512), (1, 1)); // < 2x the target: full decode
        assert_eq!(f(4096, 3072, 0), (1, 1)); // disabled
    }

    #[test]
    fn draft_decode_returns_scaled_pixels_and_full_size() {
        let img = RgbImage {
            width: 2048,
            height: 1024,
            pixels: vec![128; 2048 * 1024 * 3],
        };
        let jpeg = crate::stages::encode_pixels(&img, crate::stages::PixelCodec::Jpeg, 90).unwrap();
        let (small, full) = decode_rgb_draft(&jpeg, u64::MAX, 256).unwrap();
        assert_eq!((small.width, small.height), (512, 256)); // 1/4: 512 >= 2 x 256
        assert_eq!(full, (2048, 1024));
        assert_eq!(small.pixels.len(), 512 * 256 * 3);
    }

    #[test]
    fn empty_and_garbage_are_rejected_with_reasons() {
        assert_eq!(decode_rgb(&[], 1000), Err(DecodeError::Empty));
        assert_eq!(
            decode_rgb(b"hello, I am a text file", 1000),
            Err(DecodeError::NotAnImage)
        );
    }

    #[test]
    fn cmyk_conversion_matches_hand_values() {
        // c=255,k=0 → r = 255 - 255 = 0; pure k=255 → black; all zero → white.
        assert_eq!(cmyk_to_rgb(&[255, 0, 0, 0], false), vec![0, 255, 255]);
        assert_eq!(cmyk_to_rgb(&[0, 0, 0, 255], false), vec![0, 0, 0]);
        assert_eq!(cmyk_to_rgb(&[0, 0, 0, 0], false), vec![255, 255, 255]);
        // inverted storage: 255 means "no ink"
        assert_eq!(
            cmyk_to_rgb(&[255, 255, 255, 255], true),
            vec![255, 255, 255]
        );
        // c=128,k=64: nk=191, muldiv(128,191)=round(128*191/255)=96 → 95
        assert_eq!(cmyk_to_rgb(&[128, 0, 0, 64], false)[0], 95);
    }
}
