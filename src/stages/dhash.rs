//! A 64-bit difference hash (dHash) of decoded pixels: the cross-dataset image identity used by
//! `mplug leakage`.
//!
//! Byte hashes miss re-encoded or resized copies of one photo (COCO images re-saved inside Visual
//! Genome or RefCOCO folders); a dHash of an 9x8 area-averaged luma thumbnail is the same for those
//! copies while two different photos collide with probability ~2^-64 for unrelated content. Written
//! here (≈30 lines) rather than taken from a perceptual-hash crate so that the definition is fixed by
//! this file and documented in the schema: luma as Pillow's `convert("L")` (ITU-R 601, fixed point), bins by
//! integer pixel assignment, bit = left bin brighter than its right neighbour, row-major, MSB first.

use super::decode::RgbImage;

const COLS: usize = 9;
const ROWS: usize = 8;

/// The dHash of `img` as 16 lowercase hex digits.
pub fn dhash_hex(img: &RgbImage) -> String {
    format!("{:016x}", dhash(img))
}

/// The dHash of `img` (see the module docs for the exact definition).
pub fn dhash(img: &RgbImage) -> u64 {
    let (w, h) = (img.width as usize, img.height as usize);
    if w == 0 || h == 0 {
        return 0;
    }
    let mut sum = [[0u64; COLS]; ROWS];
    let mut count = [[0u64; COLS]; ROWS];
    let col_of: Vec<usize> = (0..w).map(|x| x * COLS / w).collect();
    for y in 0..h {
        let r = y * ROWS / h;
        let row = &img.pixels[y * w * 3..(y + 1) * w * 3];
        for (x, px) in row.chunks_exact(3).enumerate() {
            // Pillow's convert("L") (libImaging/Convert.c L24): ITU-R 601 weights in 16-bit fixed point.
            let l =
                (px[0] as u32 * 19595 + px[1] as u32 * 38470 + px[2] as u32 * 7471 + 0x8000) >> 16;
            sum[r][col_of[x]] += l as u64;
            count[r][col_of[x]] += 1;
        }
    }
    let mut bits = 0u64;
    for r in 0..ROWS {
        // Mean per bin, compared as cross-multiplied sums to stay exact.
        for c in 0..COLS - 1 {
            let (a, na) = (sum[r][c], count[r][c].max(1));
            let (b, nb) = (sum[r][c + 1], count[r][c + 1].max(1));
            bits = (bits << 1) | u64::from(a * nb > b * na);
        }
    }
    bits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(w: u32, h: u32, f: impl Fn(u32, u32) -> u8) -> RgbImage {
        let mut pixels = Vec::new();
        for y in 0..h {
            for x in 0..w {
                let v = f(x, y);
                pixels.extend_from_slice(&[v, v, v]);
            }
        }
        RgbImage {
            width: w,
            height: h,
            pixels,
        }
    }

    #[test]
    fn gradients_give_hand_computed_bits() {
        // Brightness falling left to right: every left bin is brighter → all 64 bits set.
        let falling = image(90, 80, |x, _| 255 - x as u8);
        assert_eq!(dhash(&falling), u64::MAX);
        // Rising: no bit set. Flat: no bit set (ties are not "brighter").
        assert_eq!(dhash(&image(90, 80, |x, _| x as u8)), 0);
        assert_eq!(dhash(&image(90, 80, |_, _| 77)), 0);
        // Only the top row of bins (y < 10) falls: the first 8 bits (MSB first) are set.
        let top = image(90, 80, |x, y| if y < 10 { 255 - x as u8 } else { 0 });
        assert_eq!(dhash_hex(&top), "ff00000000000000");
    }

    #[test]
    fn survives_resizing_and_differs_between_scenes() {
        let a = image(180, 160, |x, y| ((x * 7 + y * 3) % 251) as u8);
        let half = crate::stages::resize_rgb(&a, 90, 80);
        assert!((dhash(&a) ^ dhash(&half)).count_ones() <= 2);
        let b = image(180, 160, |x, y| ((x * 3 + y * 11) % 241) as u8);
        assert!((dhash(&a) ^ dhash(&b)).count_ones() > 10);
    }
}
