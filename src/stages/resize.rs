//! Downscaling so the longest side fits a limit, matching Pillow's `resize(..., BICUBIC)` within one
//! grey level.
//!
//! fast_image_resize runs the vertical pass first while Pillow runs horizontal, rounds to u8, then
//! vertical; calling it once per axis in Pillow's order removes the up-to-5-level differences at
//! high-contrast edges (measured in shared/docs/rust-stack-probe.md §4).

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use super::decode::RgbImage;

/// Target size so that `max(w, h) <= max_side`, keeping the aspect ratio, never upscaling.
/// The longer side becomes exactly `max_side`; the shorter is rounded half up, at least 1.
/// `max_side == 0` disables resizing.
pub fn fit_within(width: u32, height: u32, max_side: u32) -> (u32, u32) {
    let long = width.max(height);
    if max_side == 0 || long <= max_side {
        return (width, height);
    }
    let scale = |short: u32| -> u32 {
        let v = (short as u64 * max_side as u64 + long as u64 / 2) / long as u64;
        (v as u32).max(1)
    };
    if width >= height {
        (max_side, scale(height))
    } else {
        (scale(width), max_side)
    }
}

/// Bicubic (Catmull-Rom, a = -0.5, antialiased like Pillow) resize to `width` x `height`.
pub fn resize_rgb(img: &RgbImage, width: u32, height: u32) -> RgbImage {
    if (img.width, img.height) == (width, height) {
        return img.clone();
    }
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::CatmullRom));
    let mut resizer = Resizer::new();
    // Horizontal pass, then vertical: Pillow's order (see module docs).
    let horizontal = resize_pass(&mut resizer, &options, img, width, img.height);
    resize_pass(&mut resizer, &options, &horizontal, width, height)
}

fn resize_pass(
    resizer: &mut Resizer,
    options: &ResizeOptions,
    img: &RgbImage,
    width: u32,
    height: u32,
) -> RgbImage {
    if (img.width, img.height) == (width, height) {
        return img.clone();
    }
    let src = match ImageRef::new(img.width, img.height, &img.pixels, PixelType::U8x3) {
        Ok(src) => src,
        Err(e) => unreachable!("RgbImage invariant broken: {e}"),
    };
    let mut dst = Image::new(width, height, PixelType::U8x3);
    if let Err(e) = resizer.resize(&src, &mut dst, options) {
        unreachable!("resize between two valid U8x3 images cannot fail: {e}");
    }
    RgbImage {
        width,
        height,
        pixels: dst.into_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_within_hand_cases() {
        assert_eq!(fit_within(640, 480, 512), (512, 384)); // 480*512/640 = 384
        assert_eq!(fit_within(480, 640, 512), (384, 512));
        assert_eq!(fit_within(300, 200, 512), (300, 200)); // never upscale
        assert_eq!(fit_within(1000, 333, 512), (512, 170)); // 333*512/1000 = 170.496 → 170
        assert_eq!(fit_within(1000, 335, 512), (512, 172)); // 171.52 → 172
        assert_eq!(fit_within(5000, 1, 512), (512, 1)); // at least 1
        assert_eq!(fit_within(700, 700, 0), (700, 700));
    }

    #[test]
    fn constant_image_stays_constant() {
        let img = RgbImage {
            width: 40,
            height: 30,
            pixels: vec![77; 40 * 30 * 3],
        };
        let out = resize_rgb(&img, 20, 15);
        assert_eq!((out.width, out.height), (20, 15));
        assert!(out.pixels.iter().all(|&v| v == 77));
    }
}
