//! Image transforms identical to the reference's (`dataset/__init__.py`): torchvision's
//! `RandomResizedCrop(size, scale, ratio=(3/4, 4/3), BICUBIC)` and `RandomHorizontalFlip(0.5)` for
//! training, `Resize((size, size), BICUBIC)` for evaluation, on Pillow-equivalent pixels. The crop
//! parameters follow torchvision's `get_params` line by line (Python's round-half-even included);
//! the resize is Pillow's own bicubic resample, ported bit for bit (`stages::pillow_resize`).

use super::rng::LoaderRng;
use crate::stages::RgbImage;
use crate::stages::pillow_resize::{Region, resize_region_pillow, resize_rgb_pillow as resize_rgb};

/// A crop box: top row `i`, left column `j`, height `h`, width `w` (torchvision's order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropBox {
    /// Top.
    pub i: u32,
    /// Left.
    pub j: u32,
    /// Height.
    pub h: u32,
    /// Width.
    pub w: u32,
}

/// torchvision `RandomResizedCrop.get_params` with our random source.
pub fn random_resized_crop_params(
    width: u32,
    height: u32,
    scale: (f64, f64),
    ratio: (f64, f64),
    rng: &mut LoaderRng,
) -> CropBox {
    let area = (width as f64) * (height as f64);
    let (lr0, lr1) = (ratio.0.ln(), ratio.1.ln());
    for _ in 0..10 {
        let target_area = area * rng.uniform(scale.0, scale.1);
        let aspect = rng.uniform(lr0, lr1).exp();
        let w = (target_area * aspect).sqrt().round_ties_even() as i64;
        let h = (target_area / aspect).sqrt().round_ties_even() as i64;
        if 0 < w && w <= width as i64 && 0 < h && h <= height as i64 {
            let i = rng.below((height as i64 - h + 1) as u64) as u32;
            let j = rng.below((width as i64 - w + 1) as u64) as u32;
            return CropBox {
                i,
                j,
                h: h as u32,
                w: w as u32,
            };
        }
    }
    // Fallback: the central crop at the nearest allowed ratio.
    let in_ratio = width as f64 / height as f64;
    let (w, h) = if in_ratio < ratio.0 {
        (width, ((width as f64) / ratio.0).round_ties_even() as u32)
    } else if in_ratio > ratio.1 {
        (((height as f64) * ratio.1).round_ties_even() as u32, height)
    } else {
        (width, height)
    };
    CropBox {
        i: (height - h) / 2,
        j: (width - w) / 2,
        h,
        w,
    }
}

/// The pixels inside `b`.
pub fn crop(img: &RgbImage, b: CropBox) -> RgbImage {
    let mut pixels = Vec::with_capacity((b.w * b.h * 3) as usize);
    for y in b.i..b.i + b.h {
        let start = ((y * img.width + b.j) * 3) as usize;
        pixels.extend_from_slice(&img.pixels[start..start + (b.w * 3) as usize]);
    }
    RgbImage {
        width: b.w,
        height: b.h,
        pixels,
    }
}

/// Mirror left–right.
pub fn hflip(img: &mut RgbImage) {
    let w = img.width as usize;
    for row in img.pixels.chunks_exact_mut(w * 3) {
        row.as_chunks_mut::<3>().0.reverse();
    }
}

/// Training: crop with torchvision's parameters, bicubic resize to `size`×`size`, flip with p=0.5
/// when `allow_flip` (the coin is drawn either way, so switching flips off changes no other draw).
/// Returns the crop and whether it flipped (for traceability and tests).
pub fn train_transform(
    img: &RgbImage,
    size: u32,
    scale: (f64, f64),
    allow_flip: bool,
    rng: &mut LoaderRng,
) -> (RgbImage, CropBox, bool) {
    let b = random_resized_crop_params(img.width, img.height, scale, (3.0 / 4.0, 4.0 / 3.0), rng);
    let region = Region {
        left: b.j,
        top: b.i,
        width: b.w,
        height: b.h,
    };
    let mut out = resize_region_pillow(img, region, size, size);
    // torchvision draws the flip after the crop (`torch.rand(1) < p`).
    let flip = rng.unit() < 0.5 && allow_flip;
    if flip {
        hflip(&mut out);
    }
    (out, b, flip)
}

/// Evaluation: `Resize((size, size), BICUBIC)`, a squash without crop.
pub fn eval_transform(img: &RgbImage, size: u32) -> RgbImage {
    resize_rgb(img, size, size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loader::rng::Purpose;

    #[test]
    fn crop_params_stay_inside_and_respect_scale_and_ratio() {
        for k in 0..500 {
            let mut rng = LoaderRng::new(9, Purpose::Sample, 0, k);
            let (w, h) = (512, 384);
            let b = random_resized_crop_params(w, h, (0.5, 1.0), (0.75, 4.0 / 3.0), &mut rng);
            assert!(b.i + b.h <= h && b.j + b.w <= w, "{b:?}");
            let frac = (b.w * b.h) as f64 / (w * h) as f64;
            let ratio = b.w as f64 / b.h as f64;
            // Rounding w and h moves area and ratio slightly past the sampled bounds.
            let fallback = b == CropBox { i: 0, j: 0, h, w };
            assert!(fallback || (0.49..=1.0).contains(&frac), "{b:?} {frac}");
            assert!(fallback || (0.74..=1.35).contains(&ratio), "{b:?} {ratio}");
        }
    }

    #[test]
    fn fallback_is_torchvisions_central_crop() {
        // scale (2, 3) can never fit: torchvision falls back. A 100x10 image is wider than 4/3:
        // h = 10, w = round(10 * 4/3) = 13, centred.
        let mut rng = LoaderRng::new(1, Purpose::Sample, 0, 0);
        let b = random_resized_crop_params(100, 10, (2.0, 3.0), (0.75, 4.0 / 3.0), &mut rng);
        assert_eq!(
            b,
            CropBox {
                i: 0,
                j: 43,
                h: 10,
                w: 13
            }
        );
    }

    #[test]
    fn crop_and_flip_move_the_right_pixels() {
        let img = RgbImage {
            width: 4,
            height: 3,
            pixels: (0..36).map(|v| v as u8).collect(),
        };
        let c = crop(
            &img,
            CropBox {
                i: 1,
                j: 1,
                h: 2,
                w: 2,
            },
        );
        assert_eq!(
            c.pixels,
            vec![15, 16, 17, 18, 19, 20, 27, 28, 29, 30, 31, 32]
        );
        let mut f = c.clone();
        hflip(&mut f);
        assert_eq!(
            f.pixels,
            vec![18, 19, 20, 15, 16, 17, 30, 31, 32, 27, 28, 29]
        );
    }

    #[test]
    fn turning_flips_off_keeps_every_other_draw() {
        let img = RgbImage {
            width: 6,
            height: 5,
            pixels: (0..90).map(|v| (v * 2) as u8).collect(),
        };
        let mut flips = 0;
        for position in 0..16 {
            let rng = || LoaderRng::new(3, Purpose::Sample, 0, position);
            let (on, box_on, flipped) = train_transform(&img, 4, (0.5, 1.0), true, &mut rng());
            let (off, box_off, never) = train_transform(&img, 4, (0.5, 1.0), false, &mut rng());
            assert!(!never);
            assert_eq!(box_on, box_off, "the crop is drawn the same way");
            let mut unflipped = on.clone();
            if flipped {
                flips += 1;
                hflip(&mut unflipped);
            }
            assert_eq!(unflipped.pixels, off.pixels);
        }
        assert!(flips > 0 && flips < 16, "{flips} of 16 flipped");
    }
}
