//! The reference's `RandomAugment(2, 7)` (`dataset/randaugment.py`, numpy + OpenCV on HWC uint8):
//! two ops drawn with replacement from ten, each applied with p = 0.5, magnitude 7 of 10.
//!
//! Each op reproduces the reference's arithmetic, numpy's and OpenCV's included: LUTs in float32 or
//! float64 as numpy computes them, `astype(np.uint8)` truncating (and wrapping out-of-range values,
//! as numpy does on x86), `cv2.filter2D` in float with round-half-even, and `cv2.warpAffine`
//! (bilinear, constant border 128) in OpenCV's fixed point: the matrix inverted in double, source
//! coordinates in 1/32 pixel from 10-bit increments, 15-bit bilinear weights. Written by hand: no
//! crate reproduces OpenCV's fixed-point warp. QUIRK kept: AutoContrast computes `-low` on a numpy
//! uint8 scalar, which wraps (`-10` is 246), so channels whose minimum is above 0 saturate.

use super::rng::LoaderRng;
use crate::stages::RgbImage;

/// The reference's magnitude (of `MAX_LEVEL` 10).
pub const MAGNITUDE: f64 = 7.0;
const MAX_LEVEL: f64 = 10.0;
const FILL: [u8; 3] = [128, 128, 128];

/// One op with its arguments.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AugOp {
    /// No change.
    Identity,
    /// Per-channel min/max stretch (cutoff 0).
    AutoContrast,
    /// Per-channel histogram equalisation.
    Equalize,
    /// LUT `i * factor`.
    Brightness(f64),
    /// Blend with a 3x3 smoothing of the interior.
    Sharpness(f64),
    /// `[[1, f, 0], [0, 1, 0]]`.
    ShearX(f64),
    /// `[[1, 0, 0], [f, 1, 0]]`.
    ShearY(f64),
    /// Shift by `-offset` pixels in x.
    TranslateX(f64),
    /// Shift by `-offset` pixels in y.
    TranslateY(f64),
    /// Rotation by degrees about (W/2, H/2).
    Rotate(f64),
}

/// Draws and applies `n` ops as `RandomAugment.__call__` does: the ops first, then per op a
/// probability draw and the sign draws of its arguments. Returns the applied ops.
pub fn random_augment(img: &mut RgbImage, n: usize, rng: &mut LoaderRng) -> Vec<AugOp> {
    let ops: Vec<u64> = (0..n).map(|_| rng.below(10)).collect();
    let mut applied = Vec::new();
    for op in ops {
        if rng.unit() > 0.5 {
            continue;
        }
        let level = MAGNITUDE / MAX_LEVEL;
        let enhance = level * 1.8 + 0.1;
        let op = match op {
            0 => AugOp::Identity,
            1 => AugOp::AutoContrast,
            2 => AugOp::Equalize,
            3 => AugOp::Brightness(enhance),
            4 => AugOp::Sharpness(enhance),
            5 | 6 => {
                let f = if rng.unit() > 0.5 {
                    -level * 0.3
                } else {
                    level * 0.3
                };
                if op == 5 {
                    AugOp::ShearX(f)
                } else {
                    AugOp::ShearY(f)
                }
            }
            7 | 8 => {
                let t = level * 10.0;
                let t = if rng.unit() > 0.5 { -t } else { t };
                if op == 7 {
                    AugOp::TranslateX(t)
                } else {
                    AugOp::TranslateY(t)
                }
            }
            _ => {
                let d = level * 30.0;
                AugOp::Rotate(if rng.unit() < 0.5 { -d } else { d })
            }
        };
        if op != AugOp::Identity {
            *img = apply(img, op);
        }
        applied.push(op);
    }
    applied
}

/// Applies one op.
pub fn apply(img: &RgbImage, op: AugOp) -> RgbImage {
    let (w, h) = (img.width as f64, img.height as f64);
    let f32m = |m: [f64; 6]| m.map(|v| v as f32 as f64); // np.float32 matrices
    match op {
        AugOp::Identity => img.clone(), // random_augment skips it: no copy
        AugOp::AutoContrast => per_channel_lut(img, autocontrast_table),
        AugOp::Equalize => per_channel_lut(img, equalize_table),
        AugOp::Brightness(f) => {
            let f = f as f32;
            let table: Vec<u8> = (0..256)
                .map(|i| ((i as f32) * f).clamp(0.0, 255.0) as u8)
                .collect();
            RgbImage {
                width: img.width,
                height: img.height,
                pixels: img.pixels.iter().map(|&p| table[p as usize]).collect(),
            }
        }
        AugOp::Sharpness(f) => sharpness(img, f),
        AugOp::ShearX(f) => warp_affine(img, f32m([1.0, f, 0.0, 0.0, 1.0, 0.0])),
        AugOp::ShearY(f) => warp_affine(img, f32m([1.0, 0.0, 0.0, f, 1.0, 0.0])),
        AugOp::TranslateX(t) => warp_affine(img, f32m([1.0, 0.0, -t, 0.0, 1.0, 0.0])),
        AugOp::TranslateY(t) => warp_affine(img, f32m([1.0, 0.0, 0.0, 0.0, 1.0, -t])),
        AugOp::Rotate(deg) => {
            // cv2.getRotationMatrix2D(center, angle, 1) in double.
            let (cx, cy) = (w / 2.0, h / 2.0);
            let a = deg * std::f64::consts::PI / 180.0;
            let (alpha, beta) = (a.cos(), a.sin());
            warp_affine(
                img,
                [
                    alpha,
                    beta,
                    (1.0 - alpha) * cx - beta * cy,
                    -beta,
                    alpha,
                    beta * cx + (1.0 - alpha) * cy,
                ],
            )
        }
    }
}

fn per_channel_lut(img: &RgbImage, table_of: fn(&[u64; 256], u8, u8) -> [u8; 256]) -> RgbImage {
    let mut out = img.clone();
    for c in 0..3 {
        let mut hist = [0u64; 256];
        let (mut lo, mut hi) = (255u8, 0u8);
        for px in img.pixels.chunks_exact(3) {
            hist[px[c] as usize] += 1;
            lo = lo.min(px[c]);
            hi = hi.max(px[c]);
        }
        let table = table_of(&hist, lo, hi);
        for px in out.pixels.chunks_exact_mut(3) {
            px[c] = table[px[c] as usize];
        }
    }
    out
}

fn autocontrast_table(_hist: &[u64; 256], low: u8, high: u8) -> [u8; 256] {
    let mut t = [0u8; 256];
    if high <= low {
        for (i, v) in t.iter_mut().enumerate() {
            *v = i as u8;
        }
        return t;
    }
    let scale = 255.0 / (high - low) as f64;
    let offset = (0u8.wrapping_sub(low)) as f64 * scale; // numpy: -np.uint8(low) wraps
    for (i, v) in t.iter_mut().enumerate() {
        *v = (i as f64 * scale + offset).clamp(0.0, 255.0) as u8;
    }
    t
}

fn equalize_table(hist: &[u64; 256], _low: u8, _high: u8) -> [u8; 256] {
    let nonzero: Vec<u64> = hist.iter().copied().filter(|&v| v != 0).collect();
    let step = nonzero[..nonzero.len().saturating_sub(1)]
        .iter()
        .sum::<u64>()
        / 255;
    let mut t = [0u8; 256];
    if step == 0 {
        for (i, v) in t.iter_mut().enumerate() {
            *v = i as u8;
        }
        return t;
    }
    let mut cum = step / 2;
    for i in 0..256 {
        t[i] = (cum / step).min(255) as u8;
        cum += hist[i];
    }
    t
}

fn sharpness(img: &RgbImage, factor: f64) -> RgbImage {
    let mut out = img.clone();
    if img.width < 3 || img.height < 3 {
        return out;
    }
    sharpness_interior(img, factor as f32, &mut out);
    out
}

cpu_dispatch! {
    /// Interior pixels (AVX2: 8-wide float and `roundps`), one row of interleaved channels at a
    /// time so the loop vectorises; each value is computed exactly as per pixel (same float
    /// operations in the same order).
    fn sharpness_interior(img: &RgbImage, f: f32, out: &mut RgbImage) {
        let (w, h) = (img.width as usize, img.height as usize);
        let k_side = 1.0f32 / 13.0;
        let k_mid = 5.0f32 / 13.0;
        let row_len = w * 3;
        let n = row_len - 6; // channel values of the interior columns
        for y in 1..h - 1 {
            let r0 = &img.pixels[(y - 1) * row_len..y * row_len];
            let r1 = &img.pixels[y * row_len..(y + 1) * row_len];
            let r2 = &img.pixels[(y + 1) * row_len..(y + 2) * row_len];
            let o = &mut out.pixels[y * row_len + 3..y * row_len + 3 + n];
            for i in 0..n {
                // cv2.filter2D: float sum over the kernel in row-major order, then cvRound.
                let mut s = 0.0f32;
                s += k_side * r0[i] as f32;
                s += k_side * r0[i + 3] as f32;
                s += k_side * r0[i + 6] as f32;
                s += k_side * r1[i] as f32;
                s += k_mid * r1[i + 3] as f32;
                s += k_side * r1[i + 6] as f32;
                s += k_side * r2[i] as f32;
                s += k_side * r2[i + 3] as f32;
                s += k_side * r2[i + 6] as f32;
                let d = s.round_ties_even().clamp(0.0, 255.0);
                let v = d + f * (r1[i + 3] as f32 - d);
                o[i] = (v as i32) as u8; // numpy astype(uint8) wraps
            }
        }
    }
}

cpu_dispatch! {
    /// `cv2.warpAffine(img, M, (W, H), flags=INTER_LINEAR, borderValue=(128,128,128))`, bit for
    /// bit.
    pub fn warp_affine(img: &RgbImage, m: [f64; 6]) -> RgbImage {
        let (w, h) = (img.width as i64, img.height as i64);
        // invertAffineTransform (no WARP_INVERSE_MAP).
        let mut m = m;
        let d = m[0] * m[4] - m[1] * m[3];
        let d = if d != 0.0 { 1.0 / d } else { 0.0 };
        let (a11, a22) = (m[4] * d, m[0] * d);
        m[0] = a11;
        m[1] *= -d;
        m[3] *= -d;
        m[4] = a22;
        let b1 = -m[0] * m[2] - m[1] * m[5];
        let b2 = -m[3] * m[2] - m[4] * m[5];
        m[2] = b1;
        m[5] = b2;
        const AB_BITS: i64 = 10;
        const INTER_BITS: i64 = 5;
        let ab_scale = (1i64 << AB_BITS) as f64;
        let round_delta = (1i64 << AB_BITS) / (1 << INTER_BITS) / 2;
        let cv_round = |v: f64| v.round_ties_even() as i64;
        let adelta: Vec<i64> = (0..w)
            .map(|x| cv_round(m[0] * x as f64 * ab_scale))
            .collect();
        let bdelta: Vec<i64> = (0..w)
            .map(|x| cv_round(m[3] * x as f64 * ab_scale))
            .collect();
        // OpenCV's bilinear table: 15-bit weights per (ax, ay) in 1/32 pixel.
        let mut table = [[0i32; 4]; 32 * 32];
        for (k, t) in table.iter_mut().enumerate() {
            let (ax, ay) = ((k & 31) as i32, (k >> 5) as i32);
            *t = [
                (32 - ax) * (32 - ay) * 32,
                ax * (32 - ay) * 32,
                (32 - ax) * ay * 32,
                ax * ay * 32,
            ];
        }
        let px = |acc: i32| ((acc + (1 << 14)) >> 15).clamp(0, 255) as u8;
        let row = (w * 3) as usize;
        let mut out = vec![0u8; img.pixels.len()];
        for (y, orow) in out.chunks_exact_mut(row).enumerate() {
            let x0 = cv_round((m[1] * y as f64 + m[2]) * ab_scale) + round_delta;
            let y0 = cv_round((m[4] * y as f64 + m[5]) * ab_scale) + round_delta;
            for (x, o) in orow.chunks_exact_mut(3).enumerate() {
                let xs = (x0 + adelta[x]) >> (AB_BITS - INTER_BITS);
                let ys = (y0 + bdelta[x]) >> (AB_BITS - INTER_BITS);
                let (sx, sy) = (xs >> INTER_BITS, ys >> INTER_BITS);
                let k = ((ys & 31) << 5 | (xs & 31)) as usize;
                if k == 0 {
                    // Weight 2^15 on (sx, sy) alone: that pixel exactly, or the fill (translations).
                    if (0..w).contains(&sx) && (0..h).contains(&sy) {
                        let p = ((sy * w + sx) * 3) as usize;
                        o.copy_from_slice(&img.pixels[p..p + 3]);
                    } else {
                        o.copy_from_slice(&FILL);
                    }
                    continue;
                }
                let wt = &table[k];
                if sx >= 0 && sy >= 0 && sx + 1 < w && sy + 1 < h {
                    // All four neighbours inside (OpenCV's fast path, same arithmetic).
                    let p0 = ((sy * w + sx) * 3) as usize;
                    let (r0, r1) = (&img.pixels[p0..p0 + 6], &img.pixels[p0 + row..p0 + row + 6]);
                    for c in 0..3 {
                        o[c] = px(r0[c] as i32 * wt[0]
                            + r0[c + 3] as i32 * wt[1]
                            + r1[c] as i32 * wt[2]
                            + r1[c + 3] as i32 * wt[3]);
                    }
                    continue;
                }
                if sx < -1 || sy < -1 || sx >= w || sy >= h {
                    // No neighbour inside: the weights sum to 2^15, so the result is the fill.
                    o.copy_from_slice(&FILL);
                    continue;
                }
                let at = |xx: i64, yy: i64, c: usize| -> i32 {
                    if (0..w).contains(&xx) && (0..h).contains(&yy) {
                        img.pixels[((yy * w + xx) * 3) as usize + c] as i32
                    } else {
                        FILL[c] as i32
                    }
                };
                for (c, v) in o.iter_mut().enumerate() {
                    *v = px(at(sx, sy, c) * wt[0]
                        + at(sx + 1, sy, c) * wt[1]
                        + at(sx, sy + 1, c) * wt[2]
                        + at(sx + 1, sy + 1, c) * wt[3]);
                }
            }
        }
        RgbImage {
            width: img.width,
            height: img.height,
            pixels: out,
        }
    }
}
