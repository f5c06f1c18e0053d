//! Rendering a scene to RGB pixels.
//!
//! Drawn by hand: three filled primitives do not justify a 2-D graphics dependency.

use super::scene::{Object, Scene, Shape};
use crate::stages::RgbImage;

/// Renders `scene` at `width` x `height`. `texture_seed` adds a faint deterministic grain (±3 levels)
/// so JPEG sizes and decode costs look more like photographs than flat fills.
pub fn render(scene: &Scene, width: u32, height: u32, texture_seed: u64) -> RgbImage {
    let (w, h) = (width as usize, height as usize);
    let mut px = vec![0u8; w * h * 3];
    let bg = scene.background.rgb;
    for y in 0..h {
        for x in 0..w {
            let grain = (hash3(texture_seed, x as u64, y as u64) % 7) as i16 - 3;
            let i = (y * w + x) * 3;
            for c in 0..3 {
                px[i + c] = (bg[c] as i16 + grain).clamp(0, 255) as u8;
            }
        }
    }
    for o in &scene.objects {
        let (cx, cy, half) = geometry(o, width, height);
        let [x0, y0, bw, bh] = object_box(o, width, height);
        let (x0, y0) = (x0 as usize, y0 as usize);
        let (x1, y1) = (x0 + bw as usize, y0 + bh as usize);
        for y in y0..y1 {
            for x in x0..x1 {
                let (fx, fy) = (x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
                let inside = match o.shape {
                    Shape::Square => fx.abs() <= half && fy.abs() <= half,
                    Shape::Circle => fx * fx + fy * fy <= half * half,
                    // apex at the top: |x| <= half * (y + half) / (2 half)
                    Shape::Triangle => fy.abs() <= half && fx.abs() <= (fy + half) / 2.0,
                };
                if inside {
                    let i = (y * w + x) * 3;
                    px[i..i + 3].copy_from_slice(&o.colour.rgb);
                }
            }
        }
    }
    RgbImage {
        width,
        height,
        pixels: px,
    }
}

/// Centre and half-size of an object's square cell area, in pixels.
fn geometry(o: &Object, width: u32, height: u32) -> (f64, f64, f64) {
    let cell_w = width as f64 / 3.0;
    let cell_h = height as f64 / 3.0;
    let half = cell_w.min(cell_h) * if o.large { 0.42 } else { 0.22 };
    (
        (o.col as f64 + 0.5) * cell_w,
        (o.row as f64 + 0.5) * cell_h,
        half,
    )
}

/// The pixel box `[x, y, w, h]` an object is drawn inside (whole pixels, clipped to the image): the
/// COCO-style box of the synthetic RefCOCO annotations.
pub fn object_box(o: &Object, width: u32, height: u32) -> [f64; 4] {
    let (cx, cy, half) = geometry(o, width, height);
    let x0 = (cx - half).floor().max(0.0);
    let x1 = (cx + half).ceil().min(width as f64);
    let y0 = (cy - half).floor().max(0.0);
    let y1 = (cy + half).ceil().min(height as f64);
    [x0, y0, x1 - x0, y1 - y0]
}

/// A small integer hash (splitmix64 finaliser) for per-pixel grain.
fn hash3(a: u64, b: u64, c: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ c.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::scene::{BACKGROUNDS, Object, SHAPE_COLOURS};

    #[test]
    fn a_square_is_drawn_in_its_cell() {
        let scene = Scene {
            background: BACKGROUNDS[0],
            objects: vec![Object {
                shape: Shape::Square,
                colour: SHAPE_COLOURS[0],
                col: 2,
                row: 0,
                large: true,
            }],
        };
        let img = render(&scene, 300, 300, 1);
        let at = |x: usize, y: usize| &img.pixels[(y * 300 + x) * 3..(y * 300 + x) * 3 + 3];
        assert_eq!(at(250, 50), &[220, 30, 30]); // centre of the top-right cell
        assert!(at(50, 250)[0] > 230 && at(50, 250)[1] > 230); // bottom-left stays white (± grain)
    }
}
