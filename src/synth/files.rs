//! Writing the synthetic dataset: image files plus COCO official, Karpathy and ALBEF annotations.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde_json::{Value, json};

use super::raster::render;
use super::rng::SynthRng;
use super::scene::{captions, random_scene};
use crate::error::{Error, Result};
use crate::stages::orient::{apply_orientation, inverse_orientation};
use crate::stages::{PixelCodec, RgbImage, encode_pixels};

/// Settings of `mplug synth`.
#[derive(Debug, Clone)]
pub struct SynthOptions {
    /// Output directory.
    pub out: PathBuf,
    /// Seed of every random choice.
    pub seed: u64,
    /// Number of images.
    pub images: usize,
    /// Fixed image size (e.g. 640x480 for COCO-like benchmarks); random 160..=800 per side otherwise.
    pub size: Option<(u32, u32)>,
    /// Only baseline RGB JPEGs (for benchmarks); otherwise a mix of every file variant.
    pub plain_jpeg: bool,
}

/// How an image file is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileVariant {
    /// Baseline RGB JPEG.
    Jpeg,
    /// Progressive RGB JPEG.
    ProgressiveJpeg,
    /// Single-channel JPEG.
    GrayJpeg,
    /// Adobe-style (inverted) CMYK JPEG.
    CmykJpeg,
    /// JPEG whose pixels are stored rotated/flipped with an EXIF orientation tag undoing it.
    ExifRotatedJpeg,
    /// PNG with an alpha channel.
    RgbaPng,
    /// PNG, RGB.
    RgbPng,
}

impl FileVariant {
    const ALL: [FileVariant; 7] = [
        FileVariant::Jpeg,
        FileVariant::ProgressiveJpeg,
        FileVariant::GrayJpeg,
        FileVariant::CmykJpeg,
        FileVariant::ExifRotatedJpeg,
        FileVariant::RgbaPng,
        FileVariant::RgbPng,
    ];

    /// Name used in summaries.
    pub fn name(self) -> &'static str {
        match self {
            FileVariant::Jpeg => "jpeg",
            FileVariant::ProgressiveJpeg => "progressive_jpeg",
            FileVariant::GrayJpeg => "gray_jpeg",
            FileVariant::CmykJpeg => "cmyk_jpeg",
            FileVariant::ExifRotatedJpeg => "exif_rotated_jpeg",
            FileVariant::RgbaPng => "rgba_png",
            FileVariant::RgbPng => "rgb_png",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            FileVariant::RgbaPng | FileVariant::RgbPng => "png",
            _ => "jpg",
        }
    }
}

/// One generated image.
#[derive(Debug, Clone)]
pub struct SynthImage {
    /// COCO-style integer id (1-based).
    pub id: u64,
    /// train | val | test (Karpathy style).
    pub split: &'static str,
    /// `train2017` or `val2017`.
    pub folder: &'static str,
    /// File name inside the folder.
    pub file_name: String,
    /// Displayed size.
    pub width: u32,
    /// Displayed size.
    pub height: u32,
    /// How the file is stored.
    pub variant: FileVariant,
    /// Five captions.
    pub captions: Vec<String>,
    /// What the picture shows (for the task formats' questions and boxes).
    pub scene: super::scene::Scene,
    /// File size.
    pub bytes: u64,
}

/// What was written.
#[derive(Debug, Clone)]
pub struct SynthSummary {
    /// The images, in id order.
    pub images: Vec<SynthImage>,
    /// Annotation files written, relative to the output directory.
    pub annotation_files: Vec<String>,
}

fn pick_variant(index: usize, rng: &mut SynthRng, plain: bool) -> FileVariant {
    if plain {
        return FileVariant::Jpeg;
    }
    // The first seven images cover every variant, so even a tiny sample exercises every decoder path.
    if index < FileVariant::ALL.len() {
        return FileVariant::ALL[index];
    }
    let u = rng.unit();
    match u {
        _ if u < 0.64 => FileVariant::Jpeg,
        _ if u < 0.70 => FileVariant::ProgressiveJpeg,
        _ if u < 0.76 => FileVariant::GrayJpeg,
        _ if u < 0.82 => FileVariant::CmykJpeg,
        _ if u < 0.88 => FileVariant::ExifRotatedJpeg,
        _ if u < 0.94 => FileVariant::RgbaPng,
        _ => FileVariant::RgbPng,
    }
}

/// The minimal EXIF APP1 payload holding only an Orientation tag. Written by hand: it is 34 fixed
/// bytes, and no maintained crate writes EXIF without pulling in a metadata framework.
fn exif_orientation_segment(orientation: u8) -> Vec<u8> {
    let mut v = b"Exif\0\0".to_vec();
    v.extend_from_slice(b"II*\0"); // little-endian TIFF header
    v.extend_from_slice(&8u32.to_le_bytes()); // offset of IFD0
    v.extend_from_slice(&1u16.to_le_bytes()); // one entry
    v.extend_from_slice(&0x0112u16.to_le_bytes()); // tag: Orientation
    v.extend_from_slice(&3u16.to_le_bytes()); // type: SHORT
    v.extend_from_slice(&1u32.to_le_bytes()); // count
    v.extend_from_slice(&(orientation as u16).to_le_bytes());
    v.extend_from_slice(&[0, 0]); // value padding
    v.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
    v
}

/// Inserts an APP1 segment right after SOI.
fn insert_app1(jpeg: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(jpeg.len() + payload.len() + 4);
    out.extend_from_slice(&jpeg[..2]);
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&jpeg[2..]);
    out
}

fn jpeg_encoder_error(e: jpeg_encoder::EncodingError) -> Error {
    Error::internal_caused("synthetic JPEG encode failed", e)
}

fn encode_file(img: &RgbImage, variant: FileVariant, rng: &mut SynthRng) -> Result<Vec<u8>> {
    let (w, h) = (img.width as u16, img.height as u16);
    match variant {
        FileVariant::Jpeg => encode_pixels(img, PixelCodec::Jpeg, 90),
        FileVariant::ProgressiveJpeg => {
            let mut out = Vec::new();
            let mut enc = jpeg_encoder::Encoder::new(&mut out, 90);
            enc.set_progressive(true);
            enc.encode(&img.pixels, w, h, jpeg_encoder::ColorType::Rgb)
                .map_err(jpeg_encoder_error)?;
            Ok(out)
        }
        FileVariant::GrayJpeg => {
            // ITU-R 601 luma, as Pillow's convert("L")
            let luma: Vec<u8> = img
                .pixels
                .chunks_exact(3)
                .map(|p| {
                    ((p[0] as u32 * 299 + p[1] as u32 * 587 + p[2] as u32 * 114 + 500) / 1000) as u8
                })
                .collect();
            let mut out = Vec::new();
            jpeg_encoder::Encoder::new(&mut out, 90)
                .encode(&luma, w, h, jpeg_encoder::ColorType::Luma)
                .map_err(jpeg_encoder_error)?;
            Ok(out)
        }
        FileVariant::CmykJpeg => {
            let cmyk: Vec<u8> = img
                .pixels
                .chunks_exact(3)
                .flat_map(|p| {
                    let k = 255 - p[0].max(p[1]).max(p[2]);
                    let scale = |v: u8| -> u8 {
                        if k == 255 {
                            0
                        } else {
                            ((255 - v - k) as u32 * 255 / (255 - k) as u32) as u8
                        }
                    };
                    [scale(p[0]), scale(p[1]), scale(p[2]), k]
                })
                .collect();
            let mut out = Vec::new();
            jpeg_encoder::Encoder::new(&mut out, 92)
                .encode(&cmyk, w, h, jpeg_encoder::ColorType::Cmyk)
                .map_err(jpeg_encoder_error)?;
            Ok(out)
        }
        FileVariant::ExifRotatedJpeg => {
            let o = *rng.pick(&[3u8, 6, 8, 2, 5, 7]);
            let stored = apply_orientation(img.clone(), inverse_orientation(o));
            let jpeg = encode_pixels(&stored, PixelCodec::Jpeg, 90)?;
            Ok(insert_app1(&jpeg, &exif_orientation_segment(o)))
        }
        FileVariant::RgbaPng | FileVariant::RgbPng => {
            use image::ImageEncoder;
            let mut out = Vec::new();
            let enc = image::codecs::png::PngEncoder::new(&mut out);
            let result = if variant == FileVariant::RgbaPng {
                // Opaque shapes on a translucent background: RGB values are untouched, so dropping alpha
                // (what Pillow's convert("RGB") does) shows the scene as captioned.
                let bg = img.pixels[..3].to_vec();
                let rgba: Vec<u8> = img
                    .pixels
                    .chunks_exact(3)
                    .flat_map(|p| {
                        let near_bg = p.iter().zip(&bg).all(|(a, b)| a.abs_diff(*b) <= 6);
                        [p[0], p[1], p[2], if near_bg { 160 } else { 255 }]
                    })
                    .collect();
                enc.write_image(
                    &rgba,
                    img.width,
                    img.height,
                    image::ExtendedColorType::Rgba8,
                )
            } else {
                enc.write_image(
                    &img.pixels,
                    img.width,
                    img.height,
                    image::ExtendedColorType::Rgb8,
                )
            };
            result.map_err(|e| Error::internal_caused("synthetic PNG encode failed", e))?;
            Ok(out)
        }
    }
}

fn make_image(opts: &SynthOptions, index: usize) -> Result<(SynthImage, Vec<u8>)> {
    let mut rng = SynthRng::new(opts.seed, index as u64);
    let u = rng.unit();
    let (split, folder) = if u < 0.8 {
        ("train", "train2017")
    } else if u < 0.9 {
        ("val", "val2017")
    } else {
        ("test", "val2017")
    };
    let variant = pick_variant(index, &mut rng, opts.plain_jpeg);
    let (width, height) = opts
        .size
        .unwrap_or_else(|| (rng.range(160, 800), rng.range(160, 800)));
    let scene = random_scene(&mut rng, variant == FileVariant::GrayJpeg);
    let caps = captions(&scene, &mut rng);
    let pixels = render(&scene, width, height, opts.seed ^ index as u64);
    let bytes = encode_file(&pixels, variant, &mut rng)?;
    let id = index as u64 + 1;
    let img = SynthImage {
        id,
        split,
        folder,
        file_name: format!("{id:012}.{}", variant.extension()),
        width,
        height,
        variant,
        captions: caps,
        scene,
        bytes: bytes.len() as u64,
    };
    Ok((img, bytes))
}

/// Links `from` at `to` (a hard link, else a copy): the task formats name the same images otherwise.
pub(crate) fn link(from: &Path, to: &Path) -> Result<()> {
    if to.exists() {
        fs_err::remove_file(to)?;
    }
    if std::fs::hard_link(from, to).is_err() {
        fs_err::copy(from, to)?;
    }
    Ok(())
}

fn write_json(path: &Path, value: &Value) -> Result<()> {
    let bytes = serde_json::to_vec(value)
        .map_err(|e| Error::internal_caused("JSON serialisation failed", e))?;
    fs_err::write(path, bytes)?;
    Ok(())
}

/// Generates the dataset under `opts.out`: `images/{train2017,val2017}/` and `annotations/`.
pub fn write_synth_dataset(opts: &SynthOptions) -> Result<SynthSummary> {
    if opts.images == 0 {
        return Err(Error::input("--images must be at least 1"));
    }
    if let Some((w, h)) = opts.size
        && (w == 0 || h == 0 || w > 8192 || h > 8192)
    {
        return Err(Error::input(format!(
            "--size {w}x{h} is out of range (1..=8192 per side)"
        )));
    }
    let images_dir = opts.out.join("images");
    let ann_dir = opts.out.join("annotations");
    for d in ["train2017", "val2017"] {
        fs_err::create_dir_all(images_dir.join(d))?;
    }
    fs_err::create_dir_all(&ann_dir)?;
    let images: Vec<SynthImage> = (0..opts.images)
        .into_par_iter()
        .map(|i| {
            let (img, bytes) = make_image(opts, i)?;
            fs_err::write(images_dir.join(img.folder).join(&img.file_name), bytes)?;
            Ok(img)
        })
        .collect::<Result<_>>()?;

    let mut written = Vec::new();
    // Official layout: train2017 holds the train split, val2017 holds val + test (as in COCO, where
    // Karpathy's val/test were carved out of val2014).
    let mut ann_id = 0u64;
    for (file, folder) in [
        ("captions_train2017.json", "train2017"),
        ("captions_val2017.json", "val2017"),
    ] {
        let mut imgs = Vec::new();
        let mut anns = Vec::new();
        for im in images.iter().filter(|im| im.folder == folder) {
            imgs.push(json!({"license": 1, "file_name": im.file_name, "coco_url": "", "height": im.height,
                             "width": im.width, "date_captured": "2026-01-01 00:00:00", "flickr_url": "", "id": im.id}));
            for c in &im.captions {
                ann_id += 1;
                anns.push(json!({"image_id": im.id, "id": ann_id, "caption": c}));
            }
        }
        let doc = json!({
            "info": {"description": "mplug synthetic shapes world", "version": "1.0", "year": 2026},
            "licenses": [{"id": 1, "name": "CC0", "url": ""}],
            "images": imgs, "annotations": anns,
        });
        write_json(&ann_dir.join(file), &doc)?;
        written.push(format!("annotations/{file}"));
    }
    // Karpathy dataset_coco.json
    let mut sent_id = 0u64;
    let kimages: Vec<Value> = images
        .iter()
        .enumerate()
        .map(|(i, im)| {
            let sentences: Vec<Value> = im
                .captions
                .iter()
                .map(|c| {
                    sent_id += 1;
                    let tokens: Vec<String> = crate::text::pre_caption(c, 0)
                        .split(' ')
                        .map(String::from)
                        .collect();
                    json!({"tokens": tokens, "raw": c, "imgid": i, "sentid": sent_id})
                })
                .collect();
            let sentids: Vec<Value> = sentences.iter().map(|s| s["sentid"].clone()).collect();
            json!({"filepath": im.folder, "filename": im.file_name, "imgid": i, "split": im.split,
                   "cocoid": im.id, "sentids": sentids, "sentences": sentences})
        })
        .collect();
    write_json(
        &ann_dir.join("dataset_coco.json"),
        &json!({"dataset": "coco", "images": kimages}),
    )?;
    written.push("annotations/dataset_coco.json".to_string());
    // ALBEF/mPLUG lists: train has one row per caption, val/test one row per image with a caption list.
    let train: Vec<Value> = images
        .iter()
        .filter(|im| im.split == "train")
        .flat_map(|im| {
            im.captions.iter().map(move |c| {
                json!({"caption": c, "image": format!("{}/{}", im.folder, im.file_name), "image_id": format!("coco_{}", im.id)})
            })
        })
        .collect();
    write_json(
        &ann_dir.join("coco_karpathy_train.json"),
        &Value::Array(train),
    )?;
    written.push("annotations/coco_karpathy_train.json".to_string());
    for split in ["val", "test"] {
        let rows: Vec<Value> = images
            .iter()
            .filter(|im| im.split == split)
            .map(|im| json!({"image": format!("{}/{}", im.folder, im.file_name), "caption": im.captions}))
            .collect();
        let file = format!("coco_karpathy_{split}.json");
        write_json(&ann_dir.join(&file), &Value::Array(rows))?;
        written.push(format!("annotations/{file}"));
    }
    written.extend(super::vqa_files::write_vqa_v2(
        &opts.out, &images, opts.seed,
    )?);
    written.extend(super::statement_files::write_statements(
        &opts.out, &images, opts.seed,
    )?);
    written.extend(super::refcoco_files::write_refcoco(&opts.out, &images)?);
    Ok(SynthSummary {
        images,
        annotation_files: written,
    })
}
