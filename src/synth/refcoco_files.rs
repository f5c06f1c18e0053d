//! The shapes world as RefCOCO: refer's `refcoco/refs(unc).p` (a protocol-2 pickle, as refer's Python
//! 2 code wrote it) and `refcoco/instances.json` (COCO instances with every shape's box), over the same
//! images linked as `refcoco/images/COCO_train2014_<id:012>.jpg` (RefCOCO's images are all COCO
//! train2014).
//!
//! One ref per shape, with two expressions: "<colour> <shape>" and "<colour> <shape> <position>" (the
//! second always unique in its image, the first only when no other shape shares colour and kind, as
//! real RefCOCO expressions are sometimes ambiguous). Boxes are the pixel boxes the shapes are drawn
//! in ([`object_box`]), in the displayed (EXIF-applied) frame. Splits follow refer's unc names, per
//! image: train, val, testA, testB.

use std::path::Path;

use serde_json::{Value, json};

use super::files::{SynthImage, link};
use super::raster::object_box;
use super::scene::Shape;
use crate::error::Result;
use crate::pickle::writer::to_pickle;

fn split_of(id: u64) -> &'static str {
    match id % 10 {
        0..=6 => "train",
        7 => "val",
        8 => "testA",
        _ => "testB",
    }
}

fn category(shape: Shape) -> i64 {
    Shape::ALL.iter().position(|s| *s == shape).unwrap_or(0) as i64 + 1
}

/// Writes `refcoco/` under `out`; returns the files written, relative to `out`.
pub fn write_refcoco(out: &Path, images: &[SynthImage]) -> Result<Vec<String>> {
    let dir = out.join("refcoco");
    let image_dir = dir.join("images");
    fs_err::create_dir_all(&image_dir)?;
    let mut refs = Vec::new();
    let mut coco_images = Vec::new();
    let mut annotations = Vec::new();
    let (mut ref_id, mut ann_id, mut sent_id) = (0i64, 0i64, 0i64);
    for im in images {
        let name = format!("COCO_train2014_{:012}.jpg", im.id);
        link(
            &out.join("images").join(im.folder).join(&im.file_name),
            &image_dir.join(&name),
        )?;
        coco_images
            .push(json!({"id": im.id, "file_name": name, "width": im.width, "height": im.height}));
        for o in &im.scene.objects {
            ann_id += 1;
            let bbox = object_box(o, im.width, im.height);
            annotations.push(json!({
                "id": ann_id, "image_id": im.id, "category_id": category(o.shape), "bbox": bbox,
                "area": bbox[2] * bbox[3], "iscrowd": 0, "segmentation": [],
            }));
            let texts = [
                format!("{} {}", o.colour.name, o.shape.noun()),
                format!("{} {} {}", o.colour.name, o.shape.noun(), o.position()),
            ];
            let mut sentences = Vec::new();
            let mut sent_ids = Vec::new();
            for t in texts {
                sent_ids.push(sent_id);
                let tokens: Vec<&str> = t.split(' ').collect();
                sentences.push(json!({"tokens": tokens, "raw": t, "sent_id": sent_id, "sent": t}));
                sent_id += 1;
            }
            refs.push(json!({
                "sent_ids": sent_ids, "file_name": format!("COCO_train2014_{:012}_{ann_id}.jpg", im.id),
                "ann_id": ann_id, "ref_id": ref_id, "image_id": im.id, "split": split_of(im.id),
                "sentences": sentences, "category_id": category(o.shape),
            }));
            ref_id += 1;
        }
    }
    let categories: Vec<Value> = Shape::ALL
        .iter()
        .map(|s| json!({"id": category(*s), "name": s.noun(), "supercategory": "shape"}))
        .collect();
    let instances = json!({
        "info": {"description": "mplug synthetic shapes world, RefCOCO instances"},
        "images": coco_images, "annotations": annotations, "categories": categories,
    });
    fs_err::write(dir.join("refs(unc).p"), to_pickle(&Value::Array(refs)))?;
    let mut bytes = serde_json::to_vec(&instances)
        .map_err(|e| crate::error::Error::internal_caused("instances.json", e))?;
    bytes.push(b'\n');
    fs_err::write(dir.join("instances.json"), bytes)?;
    Ok(vec![
        "refcoco/refs(unc).p".to_string(),
        "refcoco/instances.json".to_string(),
    ])
}
