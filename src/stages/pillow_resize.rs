//! Pillow's bicubic (and bilinear) resample, ported operation for operation (libImaging/Resample.c:
//! `precompute_coeffs`, `normalize_coeffs_8bpc`, `ImagingResampleHorizontal_8bpc` /
//! `Vertical_8bpc`, the horizontal pass first and only over the rows the vertical pass needs).
//!
//! Written by hand because bit-exactness with Pillow is the point: `fast_image_resize` uses another
//! coefficient precision and differs by up to 3 grey levels on small, high-contrast images, which
//! the loader's parity with torchvision (`RandomResizedCrop` → Pillow `resize(BICUBIC)`) does not
//! allow. Fixed point with 22 fractional bits, as Pillow.

use super::decode::RgbImage;

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Pillow's resampling filters this module ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PillowFilter {
    /// `Image.BICUBIC` (torchvision's `InterpolationMode.BICUBIC` on PIL images).
    Bicubic,
    /// `Image.BILINEAR` (torchvision's default `Resize` on PIL images; the grounding transforms).
    Bilinear,
}

impl PillowFilter {
    fn support(self) -> f64 {
        match self {
            PillowFilter::Bicubic => 2.0,
            PillowFilter::Bilinear => 1.0,
        }
    }

    fn weight(self, x: f64) -> f64 {
        match self {
            PillowFilter::Bicubic => bicubic(x),
            PillowFilter::Bilinear => {
                let x = x.abs();
                if x < 1.0 { 1.0 - x } else { 0.0 }
            }
        }
    }
}

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

fn precompute(in_size: usize, out_size: usize, filter: PillowFilter) -> Coeffs {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filter.support() * filterscale;
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
            let w = filter.weight((x as f64 + xmin as f64 - center + 0.5) * ss);
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
    resize_rgb_pillow_filter(img, width, height, PillowFilter::Bicubic)
}

/// Pillow's `Image.resize((width, height), filter)` on an RGB image, bit for bit.
pub fn resize_rgb_pillow_filter(
    img: &RgbImage,
    width: u32,
    height: u32,
    filter: PillowFilter,
) -> RgbImage {
    let full = Region {
        left: 0,
        top: 0,
        width: img.width,
        height: img.height,
    };
    resize_region_filter(img, full, width, height, filter)
}

/// A rectangle of an image in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// First column.
    pub left: u32,
    /// First row.
    pub top: u32,
    /// Columns.
    pub width: u32,
    /// Rows.
    pub height: u32,
}

/// `img.crop(region).resize((width, height), BICUBIC)` in Pillow, bit for bit, without copying
/// the crop first. The region must lie inside the image.
///
/// Pillow runs the horizontal pass (only over the rows the vertical pass reads), clips to 8 bits,
/// then the vertical pass. Both passes here are the same row-wise kernel, which vectorises: the
/// horizontal pass runs on the transposed crop (its rows are the image's columns), then the result
/// is transposed back. Integer sums are exact, so layout and tap order change no value.
pub fn resize_region_pillow(img: &RgbImage, r: Region, width: u32, height: u32) -> RgbImage {
    resize_region_filter(img, r, width, height, PillowFilter::Bicubic)
}

/// [`resize_region_pillow`] with another of Pillow's filters.
pub fn resize_region_filter(
    img: &RgbImage,
    r: Region,
    width: u32,
    height: u32,
    filter: PillowFilter,
) -> RgbImage {
    let (in_w, in_h) = (r.width as usize, r.height as usize);
    let (out_w, out_h) = (width as usize, height as usize);
    let stride = img.width as usize * 3;
    let origin = r.top as usize * stride + r.left as usize * 3;
    if (in_w, in_h) == (out_w, out_h) || in_w == 0 || in_h == 0 || out_w == 0 || out_h == 0 {
        let mut pixels = Vec::with_capacity(in_w * in_h * 3);
        for y in 0..in_h {
            let s = origin + y * stride;
            pixels.extend_from_slice(&img.pixels[s..s + in_w * 3]);
        }
        return RgbImage {
            width: r.width,
            height: r.height,
            pixels,
        };
    }
    let need_h = out_w != in_w;
    let need_v = out_h != in_h;
    let vert = precompute(in_h, out_h, filter);
    // Rows of the crop the vertical pass reads.
    let (y_first, y_last) = if need_v {
        let first = vert.bounds.first().map_or(0, |b| b.0);
        let last = vert.bounds.last().map_or(in_h, |b| b.0 + b.1);
        (first, last)
    } else {
        (0, in_h)
    };
    let rows = y_last - y_first;
    let mut out = vec![0u8; out_w * out_h * 3];
    if need_h {
        let hc = precompute(in_w, out_w, filter);
        // Transposed crop: `in_w` rows of `rows` pixels.
        let t1 = transpose(&img.pixels[origin + y_first * stride..], stride, rows, in_w);
        let mut t2 = vec![0u8; out_w * rows * 3];
        resample_rows(&t1, rows * 3, rows * 3, 0, &hc, &mut t2);
        // Back to row-major. (Writing the pass's output columns in place instead measured slower:
        // scattered 3-byte stores in the inner loop.)
        let h = transpose(&t2, rows * 3, out_w, rows);
        if need_v {
            resample_rows(&h, out_w * 3, out_w * 3, y_first, &vert, &mut out);
        } else {
            out = h;
        }
    } else {
        // Only vertical: read the crop's rows in place.
        let src = &img.pixels[origin..];
        resample_rows(src, stride, in_w * 3, 0, &vert, &mut out);
    }
    RgbImage {
        width,
        height,
        pixels: out,
    }
}

/// `rows` × `cols` RGB pixels with row stride `stride` (bytes, a multiple of 3) → `cols` ×
/// `rows`, packed.
fn transpose(src: &[u8], stride: usize, rows: usize, cols: usize) -> Vec<u8> {
    let mut out = vec![[0u8; 3]; rows * cols];
    let stride = stride / 3;
    let (src, _) = src.as_chunks::<3>();
    // Tiles keep both sides in L1.
    const T: usize = 16;
    for y0 in (0..rows).step_by(T) {
        let y1 = (y0 + T).min(rows);
        for x0 in (0..cols).step_by(T) {
            let x1 = (x0 + T).min(cols);
            for y in y0..y1 {
                let row = &src[y * stride + x0..y * stride + x1];
                for (x, px) in (x0..x1).zip(row) {
                    out[x * rows + y] = *px;
                }
            }
        }
    }
    out.into_flattened()
}

cpu_dispatch! {
    /// One resample pass along the row axis: output row `yy` is the weighted sum of source rows
    /// `bounds[yy]` (numbered from `row_base`; `row_len` bytes each, `stride` apart). With AVX2:
    /// 8 × i32 multiply-adds.
    fn resample_rows(
        src: &[u8],
        stride: usize,
        row_len: usize,
        row_base: usize,
        c: &Coeffs,
        out: &mut [u8],
    ) {
        let half = 1i32 << (PRECISION_BITS - 1);
        let mut acc = vec![0i32; row_len];
        for yy in 0..c.bounds.len() {
            let (ymin, ymax) = c.bounds[yy];
            let k = &c.weights[yy * c.ksize..yy * c.ksize + ymax];
            acc.fill(half);
            for (y, &w) in k.iter().enumerate() {
                let start = (ymin + y - row_base) * stride;
                for (a, &p) in acc.iter_mut().zip(&src[start..start + row_len]) {
                    *a += p as i32 * w;
                }
            }
            let outrow = &mut out[yy * row_len..(yy + 1) * row_len];
            for (o, &a) in outrow.iter_mut().zip(&acc) {
                *o = clip8(a);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pillow's loops as written in Resample.c (per pixel, horizontal then vertical), the oracle
    /// for the transposed, vectorised version above.
    fn reference(img: &RgbImage, width: u32, height: u32) -> RgbImage {
        let filter = PillowFilter::Bicubic;
        let (in_w, in_h) = (img.width as usize, img.height as usize);
        let (out_w, out_h) = (width as usize, height as usize);
        if (in_w, in_h) == (out_w, out_h) {
            return img.clone();
        }
        let half = 1i32 << (PRECISION_BITS - 1);
        let vert = precompute(in_h, out_h, filter);
        let (y_first, y_last) = if out_h != in_h {
            (
                vert.bounds[0].0,
                vert.bounds[out_h - 1].0 + vert.bounds[out_h - 1].1,
            )
        } else {
            (0, in_h)
        };
        let (tmp, tw, off) = if out_w != in_w {
            let hc = precompute(in_w, out_w, filter);
            let mut t = vec![0u8; (y_last - y_first) * out_w * 3];
            for y in y_first..y_last {
                for xx in 0..out_w {
                    let (xmin, xmax) = hc.bounds[xx];
                    for ch in 0..3 {
                        let mut ss = half;
                        for x in 0..xmax {
                            let p = img.pixels[(y * in_w + xmin + x) * 3 + ch] as i32;
                            ss += p * hc.weights[xx * hc.ksize + x];
                        }
                        t[((y - y_first) * out_w + xx) * 3 + ch] = clip8(ss);
                    }
                }
            }
            (t, out_w, y_first)
        } else {
            (img.pixels.clone(), in_w, 0)
        };
        if out_h == in_h {
            return RgbImage {
                width,
                height,
                pixels: tmp[..out_h * tw * 3].to_vec(),
            };
        }
        let mut out = vec![0u8; out_w * out_h * 3];
        for yy in 0..out_h {
            let (ymin, ymax) = vert.bounds[yy];
            for i in 0..out_w * 3 {
                let mut ss = half;
                for y in 0..ymax {
                    ss += tmp[(ymin + y - off) * tw * 3 + i] as i32
                        * vert.weights[yy * vert.ksize + y];
                }
                out[yy * out_w * 3 + i] = clip8(ss);
            }
        }
        RgbImage {
            width,
            height,
            pixels: out,
        }
    }

    #[test]
    fn matches_pillows_loops_on_noise_crops_and_sizes() {
        // xorshift noise: high contrast exercises clipping in both passes.
        let mut s = 0x9e37_79b9_u32;
        let (w, h) = (61u32, 47u32);
        let pixels = (0..w * h * 3)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s >> 24) as u8
            })
            .collect();
        let img = RgbImage {
            width: w,
            height: h,
            pixels,
        };
        let regions = [
            (0, 0, 61, 47),
            (5, 3, 40, 30),
            (20, 11, 41, 36),
            (0, 46, 61, 1),
        ];
        for (l, t, rw, rh) in regions {
            let r = Region {
                left: l,
                top: t,
                width: rw,
                height: rh,
            };
            let cropped = crate::loader::transform::crop(
                &img,
                crate::loader::transform::CropBox {
                    i: t,
                    j: l,
                    h: rh,
                    w: rw,
                },
            );
            for (ow, oh) in [
                (16, 16),
                (40, 30),
                (40, 13),
                (9, 30),
                (97, 70),
                (rw, 5),
                (7, rh),
                (rw, rh),
            ] {
                let want = reference(&cropped, ow, oh);
                let got = resize_region_pillow(&img, r, ow, oh);
                assert_eq!(got.pixels, want.pixels, "region {r:?} -> {ow}x{oh}");
                assert_eq!((got.width, got.height), (ow, oh));
            }
        }
    }

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
        let c = precompute(96, 48, PillowFilter::Bicubic);
        for xx in 0..48 {
            let s: i64 = c.weights[xx * c.ksize..(xx + 1) * c.ksize]
                .iter()
                .map(|&w| w as i64)
                .sum();
            assert!((s - (1 << PRECISION_BITS)).abs() <= 8, "{s}");
        }
    }
}
