//! The grounding transform's `ColorJitter` (reference §4.3, TransVG's `vg_transforms.py`): with
//! probability 0.8, brightness, contrast and saturation in a random order, each by a factor drawn
//! from U(1 − 0.4, 1 + 0.4), through Pillow's `ImageEnhance`.
//!
//! Written by hand because the result must equal Pillow's byte for byte and no crate reproduces
//! `ImageEnhance`: each enhancer is `Image.blend(degenerate, image, factor)` — `a + factor·(b − a)` in
//! double precision, clipped to [0, 255] and truncated — against a black image (brightness),
//! a grey image at the rounded mean of the `L` conversion (contrast), or the `L` conversion itself
//! (colour), with `L = (19595·R + 38470·G + 7471·B + 0x8000) >> 16`.

use super::rng::LoaderRng;
use crate::stages::RgbImage;

/// One of the three enhancers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JitterOp {
    /// `ImageEnhance.Brightness`.
    Brightness,
    /// `ImageEnhance.Contrast`.
    Contrast,
    /// `ImageEnhance.Color` (saturation).
    Saturation,
}

/// The jitter strength of the reference (`ColorJitter(0.4, 0.4, 0.4)`).
const STRENGTH: f64 = 0.4;

/// Pillow's `convert("L")` of one pixel.
fn luma(p: &[u8]) -> u8 {
    ((p[0] as u32 * 19595 + p[1] as u32 * 38470 + p[2] as u32 * 7471 + 0x8000) >> 16) as u8
}

/// Pillow's `ImagingBlend` of one channel value.
fn blend(degenerate: u8, value: u8, alpha: f64) -> u8 {
    let t = degenerate as f64 + alpha * (value as f64 - degenerate as f64);
    if t <= 0.0 {
        0
    } else if t >= 255.0 {
        255
    } else {
        t as u8
    }
}

/// Applies one enhancer with `factor` in place.
pub fn enhance(img: &mut RgbImage, op: JitterOp, factor: f64) {
    let alpha = factor;
    match op {
        JitterOp::Brightness => img.pixels.iter_mut().for_each(|v| *v = blend(0, *v, alpha)),
        JitterOp::Contrast => {
            let n = (img.pixels.len() / 3).max(1) as f64;
            let sum: u64 = img.pixels.chunks_exact(3).map(|p| luma(p) as u64).sum();
            let mean = (sum as f64 / n + 0.5) as u8;
            img.pixels
                .iter_mut()
                .for_each(|v| *v = blend(mean, *v, alpha));
        }
        JitterOp::Saturation => img.pixels.chunks_exact_mut(3).for_each(|p| {
            let l = luma(p);
            p.iter_mut().for_each(|v| *v = blend(l, *v, alpha));
        }),
    }
}

/// The reference's `ColorJitter`: with p = 0.8, the three enhancers in a random order with
/// factors from U(0.6, 1.4). Returns what was applied, in order.
pub fn color_jitter(img: &mut RgbImage, rng: &mut LoaderRng) -> Vec<(JitterOp, f64)> {
    if rng.unit() >= 0.8 {
        return Vec::new();
    }
    let mut order = [
        JitterOp::Brightness,
        JitterOp::Contrast,
        JitterOp::Saturation,
    ];
    rng.shuffle(&mut order);
    order
        .into_iter()
        .map(|op| {
            let f = rng.uniform(1.0 - STRENGTH, 1.0 + STRENGTH);
            enhance(img, op, f);
            (op, f)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// By hand: brightness 0.5 halves (truncating); contrast 0 gives the rounded mean luma;
    /// colour 0 gives the luma in every channel; factors above 1 clip at 255.
    #[test]
    fn enhancers_by_hand() {
        let px = |p: Vec<u8>| RgbImage {
            width: (p.len() / 3) as u32,
            height: 1,
            pixels: p,
        };
        let mut a = px(vec![255, 101, 0, 10, 20, 30]);
        enhance(&mut a, JitterOp::Brightness, 0.5);
        assert_eq!(a.pixels, [127, 50, 0, 5, 10, 15]);
        // luma(255, 0, 0) = (255·19595 + 0x8000) >> 16 = 76; luma(0, 0, 0) = 0; mean 38 (+0.5 → 38)
        let mut b = px(vec![255, 0, 0, 0, 0, 0]);
        enhance(&mut b, JitterOp::Contrast, 0.0);
        assert_eq!(b.pixels, [38; 6]);
        let mut c = px(vec![255, 0, 0]);
        enhance(&mut c, JitterOp::Saturation, 0.0);
        assert_eq!(c.pixels, [76, 76, 76]);
        let mut d = px(vec![200, 100, 0]);
        enhance(&mut d, JitterOp::Brightness, 1.4);
        assert_eq!(d.pixels, [255, 140, 0]);
    }
}
