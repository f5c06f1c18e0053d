//! EXIF orientation: read the tag and turn stored pixels into displayed pixels, as Pillow's
//! `ImageOps.exif_transpose` does.

use std::io::Cursor;

use super::decode::RgbImage;

/// The EXIF orientation tag (1..=8) of a JPEG/PNG/WebP file, or 1 when absent or unreadable.
///
/// Read as Pillow's `getexif()` does: the first IFD counts even when a later part of the EXIF block
/// is broken (a next-IFD pointer that loops back, a truncated thumbnail IFD), so the reader continues
/// on errors and keeps what it parsed.
pub fn exif_orientation(bytes: &[u8]) -> u8 {
    let mut reader = exif::Reader::new();
    reader.continue_on_error(true);
    let parsed = reader
        .read_from_container(&mut Cursor::new(bytes))
        .or_else(|e| e.distill_partial_result(|_| {}));
    let Ok(exif) = parsed else {
        return 1;
    };
    exif.get_field(exif::Tag::Orientation, exif::In::PRIMARY)
        .and_then(|f| f.value.get_uint(0))
        .filter(|v| (1..=8).contains(v))
        .map_or(1, |v| v as u8)
}

/// Applies EXIF orientation `o` to stored pixels, giving the image as it should be displayed.
pub fn apply_orientation(img: RgbImage, o: u8) -> RgbImage {
    let Some(orientation) = image::metadata::Orientation::from_exif(o) else {
        return img;
    };
    if orientation == image::metadata::Orientation::NoTransforms {
        return img;
    }
    let Some(buf) = image::RgbImage::from_raw(img.width, img.height, img.pixels) else {
        unreachable!("RgbImage invariant: pixels.len() == width * height * 3")
    };
    let mut dynamic = image::DynamicImage::ImageRgb8(buf);
    dynamic.apply_orientation(orientation);
    let out = dynamic.into_rgb8();
    RgbImage {
        width: out.width(),
        height: out.height(),
        pixels: out.into_raw(),
    }
}

/// The inverse of orientation `o`: `apply_orientation(apply_orientation(x, inverse(o)), o) == x`.
/// Used by the synthetic generator to store pixels that display correctly.
pub fn inverse_orientation(o: u8) -> u8 {
    match o {
        6 => 8,
        8 => 6,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2x1 image [A B]; orientation 6 means "rotate 90° clockwise to display" → a 1x2 column [A; B].
    #[test]
    fn orientation_6_rotates_clockwise() {
        let img = RgbImage {
            width: 2,
            height: 1,
            pixels: vec![1, 1, 1, 2, 2, 2],
        };
        let out = apply_orientation(img, 6);
        assert_eq!((out.width, out.height), (1, 2));
        assert_eq!(out.pixels, vec![1, 1, 1, 2, 2, 2]);
        // orientation 8 (rotate counter-clockwise): [B; A]
        let img = RgbImage {
            width: 2,
            height: 1,
            pixels: vec![1, 1, 1, 2, 2, 2],
        };
        assert_eq!(apply_orientation(img, 8).pixels, vec![2, 2, 2, 1, 1, 1]);
    }

    #[test]
    fn inverse_round_trips_every_orientation() {
        let img = RgbImage {
            width: 3,
            height: 2,
            pixels: (0..18).collect(),
        };
        for o in 1..=8 {
            let stored = apply_orientation(img.clone(), inverse_orientation(o));
            assert_eq!(apply_orientation(stored, o), img, "orientation {o}");
        }
    }
}
