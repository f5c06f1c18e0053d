//! Pillow's bicubic resample, ported operation for operation (libImaging/Resample.c:
//! `precompute_coeffs`, `normalize_coeffs_8bpc`, `ImagingResampleHorizontal_8bpc` /
//! `Vertical_8bpc`, the horizontal pass first and only over the rows the vertical pass needs).
//!
//! Written by hand because bit-exactness with Pillow is the point: `fast_image_resize` uses another
//! coefficient precision and differs by up to 3 grey levels on small, high-contrast images, which
//! the loader's parity with torchvision (`RandomResizedCrop` → Pillow `resize(BICUBIC)`) does not
//! allow. Fixed point with 22 fractional bits, as Pillow.

use super::decode::RgbImage;

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Keys' cubic with a = -0.5 (Pillow's `bicubic_filter`), support 2.
fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Per output index: (first input index, taps) and the fixed-point weights (`ksize` per output).
struct Coeffs {
    bounds: Vec<(usize, usize)>,
    weights: Vec<i32>,
    ksize: usize,
}

fn precompute(in_size: usize, out_size: usize) -> Coeffs {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = 2.0 * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(out_size);
    let mut weights = vec![0i32; out_size * ksize];
    let mut k = vec![0f64; ksize];
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        let ss = 1.0 / filterscale;
        // C's (int) truncates toward zero; both operands are >= -0.5 + ... so use trunc.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize - xmin;
        let mut ww = 0.0;
        for (x, kx) in k.iter_mut().enumerate().take(xmax) {
            let w = bicubic((x as f64 + xmin as f64 - center + 0.5) * ss);
            *kx = w;
            ww += w;
        }
        for (x, kx) in k.iter().enumerate().take(xmax) {
            let v = if ww != 0.0 { kx / ww } else { *kx };
            let f = v * (1u64 << PRECISION_BITS) as f64;
            weights[xx * ksize + x] = if v < 0.0 {
                (-0.5 + f) as i32
            } else {
                (0.5 + f) as i32
            };
        }
        bounds.push((xmin, xmax));
    }
    Coeffs {
        bounds,
        weights,
        ksize,
    }
}

#[inline]
fn clip8(v: i32) -> u8 {
    (v >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Pillow's `Image.resize((width, height), Image.BICUBIC)` on an RGB image, bit for bit.
pub fn resize_rgb_pillow(img: &RgbImage, width: u32, height: u32) -> RgbImage {
    let (in_w, in_h) = (img.width as usize, img.height as usize);
    let (out_w, out_h) = (width as usize, height as usize);
    if (in_w, in_h) == (out_w, out_h) || in_w == 0 || in_h == 0 || out_w == 0 || out_h == 0 {
        return img.clone();
    }
    let need_h = out_w != in_w;
    let need_v = out_h != in_h;
    let vert = precompute(in_h, out_h);
    // Rows of the input the vertical pass reads.
    let (y_first, y_last) = if need_v {
        let first = vert.bounds.first().map_or(0, |b| b.0);
        let last = vert.bounds.last().map_or(in_h, |b| b.0 + b.1);
        (first, last)
    } else {
        (0, in_h)
    };
    let half = 1i32 << (PRECISION_BITS - 1);
    let temp: Vec<u8>;
    let (src, src_w, row_offset) = if need_h {
        let hc = precompute(in_w, out_w);
        let rows = y_last - y_first;
        let mut out = vec![0u8; rows * out_w * 3];
        for y in 0..rows {
            let inrow = &img.pixels[(y + y_first) * in_w * 3..(y + y_first + 1) * in_w * 3];
            let outrow = &mut out[y * out_w * 3..(y + 1) * out_w * 3];
            for xx in 0..out_w {
                let (xmin, xmax) = hc.bounds[xx];
                let k = &hc.weights[xx * hc.ksize..xx * hc.ksize + xmax];
                let px = &inrow[xmin * 3..(xmin + xmax) * 3];
                let (mut r, mut g, mut b) = (half, half, half);
                for (p, &w) in px.chunks_exact(3).zip(k) {
                    r += p[0] as i32 * w;
                    g += p[1] as i32 * w;
                    b += p[2] as i32 * w;
                }
                outrow[xx * 3] = clip8(r);
                outrow[xx * 3 + 1] = clip8(g);
                outrow[xx * 3 + 2] = clip8(b);
            }
        }
        temp = out;
        (&temp[..], out_w, y_first)
    } else {
        (&img.pixels[..], in_w, 0)
    };
    if !need_v {
        return RgbImage {
            width,
            height,
            pixels: src[..out_h * src_w * 3].to_vec(),
        };
    }
    let mut out = vec![0u8; out_w * out_h * 3];
    let row_len = src_w * 3;
    // Row-wise accumulation (vectorises); integer sums are exact, so the order of the taps does
    // not change the result relative to Pillow's per-pixel loop.
    let mut acc = vec![0i32; row_len];
    for yy in 0..out_h {
        let (ymin, ymax) = vert.bounds[yy];
        let k = &vert.weights[yy * vert.ksize..yy * vert.ksize + ymax];
        acc.fill(half);
        for (y, &w) in k.iter().enumerate() {
            let start = (ymin + y - row_offset) * row_len;
            for (a, &p) in acc.iter_mut().zip(&src[start..start + row_len]) {
                *a += p as i32 * w;
            }
        }
        let outrow = &mut out[yy * out_w * 3..(yy + 1) * out_w * 3];
        for (o, &a) in outrow.iter_mut().zip(&acc) {
            *o = clip8(a);
        }
    }
    RgbImage {
        width,
        height,
        pixels: out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_stays_constant_and_weights_sum_to_one() {
        let img = RgbImage {
            width: 37,
            height: 23,
            pixels: vec![200; 37 * 23 * 3],
        };
        for (w, h) in [(10, 10), (50, 40), (37, 5), (3, 23)] {
            let out = resize_rgb_pillow(&img, w, h);
            assert!(out.pixels.iter().all(|&v| v == 200), "{w}x{h}");
        }
        let c = precompute(96, 48);
        for xx in 0..48 {
            let s: i64 = c.weights[xx * c.ksize..(xx + 1) * c.ksize]
                .iter()
                .map(|&w| w as i64)
                .sum();
            assert!((s - (1 << PRECISION_BITS)).abs() <= 8, "{s}");
        }
    }
}
