//! The grounding transforms with their box (reference §4.3; TransVG's `vg_transforms.py` as
//! `grounding_dataset.make_transforms` builds them). Training, in order:
//! 1. `RandomSelect`: a phrase containing `left`, `right`, `top`, `bottom` or `middle` (substring)
//!    always takes (a); otherwise (b) with p = 0.5. (a): long side to s ∈ `scales` (S − ⌊S/20⌋·i,
//!    i < 7: 336…240 at S = 336). (b): short side to {400, 500, 600}, `RandomSizeCrop(384, 600)`,
//!    then (a). Resizes are PIL bilinear with Python-rounded sizes; the box scales with the ratio.
//!    `RandomSizeCrop` tries 20 crops and accepts the first whose **top** offset is below the box
//!    centre's x and whose **left** offset is below its y (the reference's swapped axes, kept); the
//!    box is shifted and clipped to the crop, and may leave it.
//! 2. `ColorJitter` ([`super::color_jitter`]).
//! 3. `RandomHorizontalFlip` (p = 0.5): the image, the box `[W − x2, y1, W − x1, y2]`, and the
//!    text with `left` ↔ `right` swapped as substrings ("bright" → "bleft", as the reference).
//! 4. `NormalizeAndPad(S, aug_translate)`: the image at a random (top, left) of a zero S×S canvas,
//!    the box shifted and turned into (cx, cy, w, h) / S. Normalisation (CLIP mean/std) and the zero
//!    outside the image happen on the tensors ([`super::HostBatch::to_tensors`]).
//!
//! Evaluation: long side to S, centred (`round(d/2 − 0.1)` = ⌊d/2⌋), no augmentation.
//!
//! The absolute sizes of (b) are the reference's whatever S is (a tiny model's 32-px canvas still
//! goes through 400–600-px intermediates), so the crop statistics are the reference's.

use serde::Serialize;

use super::color_jitter::{JitterOp, color_jitter};
use super::rng::LoaderRng;
use super::transform::{CropBox, crop, hflip};
use crate::stages::RgbImage;
use crate::stages::pillow_resize::{PillowFilter, resize_rgb_pillow_filter};

/// `RandomSelect`'s direction words.
const DIRECTION_WORDS: [&str; 5] = ["left", "right", "top", "bottom", "middle"];
/// Branch (b)'s short sides.
const SHORT_SIDES: [u32; 3] = [400, 500, 600];
/// `RandomSizeCrop(384, 600)`, 20 tries.
const CROP_MIN: u32 = 384;
const CROP_MAX: u32 = 600;
const CROP_TRIES: usize = 20;

/// The reference config's augmentation switches (`grounding_mplug_large.yaml`: all on;
/// `aug_blur` is off there and not implemented here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct GroundingAugment {
    /// `aug_crop`: branch (b) with p = 0.5 (else never).
    pub crop: bool,
    /// `aug_scale`: the seven long sides (else S only).
    pub scale: bool,
    /// `aug_translate`: a random place on the canvas (else centred).
    pub translate: bool,
}

impl Default for GroundingAugment {
    fn default() -> Self {
        GroundingAugment {
            crop: true,
            scale: true,
            translate: true,
        }
    }
}

/// The random choices of one training sample, in the order they were made.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroundingTrace {
    /// Branch (b): short-side resize and crop.
    pub crop_branch: bool,
    /// (b)'s short side.
    pub short_side: Option<u32>,
    /// (b)'s accepted crop `[top, left, height, width]` (none when 20 tries failed).
    pub crop: Option<[u32; 4]>,
    /// The long side.
    pub long_side: u32,
    /// Colour jitter, in order (empty when skipped).
    pub jitter: Vec<(JitterOp, f64)>,
    /// Flipped.
    pub flipped: bool,
    /// Canvas offset of the image.
    pub top: u32,
    /// Canvas offset of the image.
    pub left: u32,
}

/// A transformed sample.
#[derive(Debug, Clone)]
pub struct GroundingSample {
    /// The S×S canvas (the image at `region`, zeros elsewhere).
    pub canvas: RgbImage,
    /// Where the image sits: `[left, top, width, height]`.
    pub region: [u32; 4],
    /// The box as (cx, cy, w, h) / S.
    pub target: [f64; 4],
    /// The phrase (flipped: `left` ↔ `right`).
    pub text: String,
    /// The random choices (training).
    pub trace: Option<GroundingTrace>,
}

/// `aug_scale`'s long sides: S − ⌊S/20⌋·i for i < 7.
pub fn scales(size: u32) -> Vec<u32> {
    let rate = size / 20;
    (0..7).map(|i| size - rate * i).collect()
}

fn resize_by(img: &RgbImage, b: [f64; 4], ratio: f64) -> (RgbImage, [f64; 4]) {
    // Python's round() of w·ratio, h·ratio; at least one pixel
    let side = |v: u32| ((v as f64 * ratio).round_ties_even() as u32).max(1);
    let out = resize_rgb_pillow_filter(
        img,
        side(img.width),
        side(img.height),
        PillowFilter::Bilinear,
    );
    (out, b.map(|v| v * ratio))
}

/// `resize_according_to_long_side`.
pub fn resize_long_side(img: &RgbImage, b: [f64; 4], size: u32) -> (RgbImage, [f64; 4]) {
    resize_by(
        img,
        b,
        size as f64 / img.width.max(img.height).max(1) as f64,
    )
}

/// `resize_according_to_short_side`.
pub fn resize_short_side(img: &RgbImage, b: [f64; 4], size: u32) -> (RgbImage, [f64; 4]) {
    resize_by(
        img,
        b,
        size as f64 / img.width.min(img.height).max(1) as f64,
    )
}

/// Python's `random.randint(lo, hi)` (inclusive); `lo` when the range is empty.
fn randint(rng: &mut LoaderRng, lo: u32, hi: u32) -> u32 {
    if hi <= lo {
        lo
    } else {
        lo + rng.below((hi - lo + 1) as u64) as u32
    }
}

/// `RandomSizeCrop`'s choice: `[top, left, height, width]` or none after 20 rejected tries. The
/// test compares the box centre's x with the top offset and its y with the left offset, as the
/// reference does.
pub fn random_size_crop(img: &RgbImage, b: [f64; 4], rng: &mut LoaderRng) -> Option<[u32; 4]> {
    let (cx, cy) = ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0);
    for _ in 0..CROP_TRIES {
        let w = randint(rng, CROP_MIN, img.width.min(CROP_MAX)).min(img.width);
        let h = randint(rng, CROP_MIN, img.height.min(CROP_MAX)).min(img.height);
        // T.RandomCrop.get_params
        let (i, j) = if w == img.width && h == img.height {
            (0, 0)
        } else {
            (
                rng.below((img.height - h + 1) as u64) as u32,
                rng.below((img.width - w + 1) as u64) as u32,
            )
        };
        if cx > i as f64 && cy > j as f64 {
            return Some([i, j, h, w]);
        }
    }
    None
}

/// `vg_transforms.crop`: the image cut to `[top, left, height, width]`, the box shifted and clipped
/// to it.
pub fn crop_with_box(img: &RgbImage, b: [f64; 4], r: [u32; 4]) -> (RgbImage, [f64; 4]) {
    let [i, j, h, w] = r;
    let out = crop(img, CropBox { i, j, h, w });
    let (i, j, h, w) = (i as f64, j as f64, h as f64, w as f64);
    let b = [
        (b[0] - j).min(w).max(0.0),
        (b[1] - i).min(h).max(0.0),
        (b[2] - j).min(w).max(0.0),
        (b[3] - i).min(h).max(0.0),
    ];
    (out, b)
}

/// The flip's text: `left` ↔ `right` as substrings.
pub fn swap_sides(text: &str) -> String {
    const MARK: &str = "*&^special^&*";
    text.replace("right", MARK)
        .replace("left", "right")
        .replace(MARK, "left")
}

/// `NormalizeAndPad`'s placement and target: the image on a zero canvas at (top, left), the box
/// as (cx, cy, w, h) / S.
fn pad(img: &RgbImage, b: [f64; 4], size: u32, top: u32, left: u32) -> GroundingSample {
    let mut canvas = RgbImage {
        width: size,
        height: size,
        pixels: vec![0; (size * size * 3) as usize],
    };
    let (w, h) = (img.width.min(size - left), img.height.min(size - top));
    for y in 0..h {
        let src = (y * img.width * 3) as usize;
        let dst = (((top + y) * size + left) * 3) as usize;
        canvas.pixels[dst..dst + (w * 3) as usize]
            .copy_from_slice(&img.pixels[src..src + (w * 3) as usize]);
    }
    let (x0, y0) = (b[0] + left as f64, b[1] + top as f64);
    let (x1, y1) = (b[2] + left as f64, b[3] + top as f64);
    let s = size as f64;
    GroundingSample {
        canvas,
        region: [left, top, w, h],
        target: [
            (x0 + x1) / 2.0 / s,
            (y0 + y1) / 2.0 / s,
            (x1 - x0) / s,
            (y1 - y0) / s,
        ],
        text: String::new(),
        trace: None,
    }
}

/// The training transform of one sample: `img` with box `b` = `[x1, y1, x2, y2]` in its pixels and
/// the lower-cased phrase, onto an S = `size` canvas.
pub fn train_transform(
    img: &RgbImage,
    b: [f64; 4],
    text: &str,
    size: u32,
    aug: GroundingAugment,
    rng: &mut LoaderRng,
) -> GroundingSample {
    let directional = DIRECTION_WORDS.iter().any(|w| text.contains(w));
    // RandomSelect: p = 0.5 with aug_crop, 0 without (the coin is drawn either way)
    let crop_branch = !directional && rng.unit() < if aug.crop { 0.5 } else { 0.0 };
    let (mut img, mut b) = (img.clone(), b);
    let (mut short_side, mut crop_region) = (None, None);
    if crop_branch {
        let s = SHORT_SIDES[rng.below(SHORT_SIDES.len() as u64) as usize];
        (img, b) = resize_short_side(&img, b, s);
        short_side = Some(s);
        crop_region = random_size_crop(&img, b, rng);
        if let Some(r) = crop_region {
            (img, b) = crop_with_box(&img, b, r);
        }
    }
    let sizes = if aug.scale { scales(size) } else { vec![size] };
    let long_side = sizes[rng.below(sizes.len() as u64) as usize];
    (img, b) = resize_long_side(&img, b, long_side);
    let jitter = color_jitter(&mut img, rng);
    let flipped = rng.unit() < 0.5;
    let mut text = text.to_string();
    if flipped {
        hflip(&mut img);
        let w = img.width as f64;
        b = [w - b[2], b[1], w - b[0], b[3]];
        text = swap_sides(&text);
    }
    let (dh, dw) = (size - img.height.min(size), size - img.width.min(size));
    let (top, left) = if aug.translate {
        let top = rng.below(dh as u64 + 1) as u32;
        (top, rng.below(dw as u64 + 1) as u32)
    } else {
        (dh / 2, dw / 2)
    };
    let mut out = pad(&img, b, size, top, left);
    out.text = text;
    out.trace = Some(GroundingTrace {
        crop_branch,
        short_side,
        crop: crop_region,
        long_side,
        jitter,
        flipped,
        top,
        left,
    });
    out
}

/// The evaluation transform: long side to `size`, centred, no augmentation.
pub fn eval_transform(img: &RgbImage, b: [f64; 4], text: &str, size: u32) -> GroundingSample {
    let (img, b) = resize_long_side(img, b, size);
    let top = (size - img.height.min(size)) / 2;
    let left = (size - img.width.min(size)) / 2;
    let mut out = pad(&img, b, size, top, left);
    out.text = text.to_string();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loader::rng::Purpose;

    fn grey(w: u32, h: u32) -> RgbImage {
        RgbImage {
            width: w,
            height: h,
            pixels: vec![128; (w * h * 3) as usize],
        }
    }

    /// The reference's scales (336 − 16i) and the tiny canvas's (32 − i).
    #[test]
    fn scales_as_the_reference() {
        assert_eq!(scales(336), [336, 320, 304, 288, 272, 256, 240]);
        assert_eq!(scales(32), [32, 31, 30, 29, 28, 27, 26]);
    }

    /// Substring swaps, "bright" included.
    #[test]
    fn side_swap_is_by_substring() {
        assert_eq!(swap_sides("left of the right man"), "right of the left man");
        assert_eq!(swap_sides("bright lamp"), "bleft lamp");
    }

    /// The crop test compares the centre's x with the top offset and its y with the left offset:
    /// a box centred at (x 10, y 590) on a 600×600 image accepts a crop only when top < 10 and
    /// left < 590; the box is clipped to the crop.
    #[test]
    fn crop_acceptance_has_the_swapped_axes() {
        let img = grey(600, 600);
        let b = [0.0, 580.0, 20.0, 600.0];
        let mut accepted = 0;
        for k in 0..200 {
            let mut rng = LoaderRng::new(1, Purpose::Sample, 0, k);
            if let Some([i, j, h, w]) = random_size_crop(&img, b, &mut rng) {
                assert!(i < 10 && j < 590, "top {i} left {j}");
                assert!((384..=600).contains(&h) && (384..=600).contains(&w));
                accepted += 1;
            }
        }
        assert!(accepted > 0);
        let (c, cb) = crop_with_box(&img, [100.0, 50.0, 500.0, 450.0], [100, 200, 300, 250]);
        assert_eq!((c.width, c.height), (250, 300));
        // x: 100 − 200 → 0, 500 − 200 = 300 → min(300, 250) = 250; y: 50 − 100 → 0, 450 − 100 = 350 → 300
        assert_eq!(cb, [0.0, 0.0, 250.0, 300.0]);
    }

    /// Evaluation placement and target by hand: 64×32 → 32×16 centred 8 px down; the box
    /// [0, 0, 32, 16] (the left half) → corners [0, 8, 16, 16] → (8, 12, 16, 8) / 32.
    #[test]
    fn eval_transform_by_hand() {
        let s = eval_transform(&grey(64, 32), [0.0, 0.0, 32.0, 16.0], "x", 32);
        assert_eq!(s.region, [0, 8, 32, 16]);
        assert_eq!(s.target, [8.0 / 32.0, 12.0 / 32.0, 16.0 / 32.0, 8.0 / 32.0]);
        assert_eq!(s.canvas.pixels[..32 * 8 * 3], vec![0u8; 32 * 8 * 3][..]);
    }

    /// A flipped training sample mirrors its box in the resized image, and every sample's image
    /// lies inside the canvas; directional phrases never take the crop branch.
    #[test]
    fn training_samples_keep_box_and_canvas_consistent() {
        let mut flips = 0;
        for k in 0..64 {
            let mut rng = LoaderRng::new(3, Purpose::Sample, 0, k);
            let s = train_transform(
                &grey(60, 40),
                [6.0, 4.0, 30.0, 20.0],
                "the left dog",
                32,
                GroundingAugment::default(),
                &mut rng,
            );
            let t = s.trace.unwrap();
            assert!(!t.crop_branch);
            let [l, top, w, h] = s.region;
            assert!(l + w <= 32 && top + h <= 32);
            assert_eq!(w.max(h), t.long_side);
            let r = t.long_side as f64 / 60.0;
            let want_cx = if t.flipped {
                (w as f64 - 18.0 * r + l as f64) / 32.0
            } else {
                (18.0 * r + l as f64) / 32.0
            };
            assert!((s.target[0] - want_cx).abs() < 1e-9, "{:?} {t:?}", s.target);
            assert_eq!(s.text.contains("right"), t.flipped);
            flips += t.flipped as usize;
        }
        assert!(flips > 10 && flips < 54);
    }
}
