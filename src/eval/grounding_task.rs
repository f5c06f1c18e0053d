//! `mplug eval grounding`: a box for every referring expression of an `image_grounding.v1` split, as
//! the reference's `grounding_mplug.py` evaluation (reference §3.5, §4.3):
//! - image: long side to `image_res` (TransVG's `resize`: ratio = S / max(w, h), sizes rounded as
//!   Python's `round`, PIL bilinear), ImageNet mean/std (the train/test mismatch quirk), centred on a
//!   zero S×S canvas (`top = round(dh / 2 − 0.1)`);
//! - text: `[CLS]` + at most 18 word pieces + `[SEP]`, zero-padded to 20;
//! - memory = fused [visual; text]; the decoder starts from `[unused339]` (id 344) and takes 4 greedy
//!   steps over the logits + `bbox_prob_mask` (−10000 outside the 337 coordinate tokens, ids 345–681);
//! - box = (id − 345) / 336 as normalised (cx, cy, w, h) in the padded frame, converted to corners and
//!   clamped to [0, 1]; correct when IoU with the ground truth ≥ 0.5 (TransVG's `bbox_iou`).

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, Int32Type, Int64Type};
use serde::Serialize;
use tch::{Device, Kind, Tensor};

use super::batches::{EvalBatch, ItemSelection, stored_image, stream};
use super::grounding::box_iou;
use super::settings::EvalSettings;
use super::split::EvalSplit;
use crate::error::{Error, Result};
use crate::loader::text::{CLS, SEP};
use crate::model::MplugModel;
use crate::stages::RgbImage;
use crate::stages::pillow_resize::{PillowFilter, resize_rgb_pillow_filter};

/// Coordinate bins: the reference model hard-codes 336 (large's `image_res`), so 337 tokens.
pub const COORD_BINS: i64 = 336;
/// `[unused339]`, the decoder's start token for boxes.
pub const PREFIX_ID: i64 = 344;
/// `[unused340]`, bin 0.
pub const FIRST_BIN_ID: i64 = 345;
/// `max_query_len`.
pub const QUERY_LEN: usize = 20;
/// ImageNet normalisation of the grounding test transform.
pub const IMAGENET_MEAN: [f64; 3] = [0.485, 0.456, 0.406];
/// ImageNet std.
pub const IMAGENET_STD: [f64; 3] = [0.229, 0.224, 0.225];

/// Where the resized image sits on the padded canvas.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PadLayout {
    /// Canvas pixels per source pixel.
    pub ratio: f64,
    /// Resized width.
    pub width: u32,
    /// Resized height.
    pub height: u32,
    /// Left offset on the canvas.
    pub left: u32,
    /// Top offset.
    pub top: u32,
}

/// TransVG's resize + `NormalizeAndPad` placement for a `w`×`h` source on a `size` canvas.
pub fn pad_layout(w: u32, h: u32, size: u32) -> PadLayout {
    let ratio = size as f64 / w.max(h).max(1) as f64;
    let side = |v: u32| ((v as f64 * ratio).round_ties_even() as u32).clamp(1, size);
    let (width, height) = (side(w), side(h));
    // round(d / 2 − 0.1) with Python's rounding is ⌊d / 2⌋ for integer d
    PadLayout {
        ratio,
        width,
        height,
        left: (size - width) / 2,
        top: (size - height) / 2,
    }
}

/// One referring expression.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct GroundingItem {
    /// The image.
    pub image_id: String,
    /// `sent_id`.
    pub sent_id: i64,
    /// The expression.
    pub sentence: String,
    /// Its word pieces (no special tokens).
    #[serde(skip)]
    pub tokens: Vec<i32>,
    /// Ground truth `[x, y, w, h]` in source pixels.
    pub gt_box: [f64; 4],
    /// Ground truth normalised (cx, cy, w, h) in the padded frame.
    pub gt_norm: [f64; 4],
    /// The canvas placement.
    #[serde(skip)]
    pub layout: PadLayout,
}

/// A predicted box.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct GroundingPrediction {
    /// The expression.
    #[serde(flatten)]
    pub item: GroundingItem,
    /// Predicted normalised (cx, cy, w, h) in the padded frame.
    pub pred_norm: [f64; 4],
    /// Predicted `[x, y, w, h]` in source pixels.
    pub pred_box: [f64; 4],
    /// IoU with the ground truth in the normalised padded frame.
    pub iou: f64,
    /// The four coordinate tokens.
    pub tokens: Vec<i64>,
}

fn layout_of(b: &RecordBatch, r: usize, size: u32) -> Result<PadLayout> {
    let int = |name: &str| -> Result<u32> {
        Ok(b.column_by_name(name)
            .ok_or_else(|| Error::format(format!("image_grounding.v1 shard lacks `{name}`")))?
            .as_primitive::<Int32Type>()
            .value(r)
            .max(1) as u32)
    };
    Ok(pad_layout(int("orig_width")?, int("orig_height")?, size))
}

/// Corners → (cx, cy, w, h).
fn cxcywh(x0: f64, y0: f64, x1: f64, y1: f64) -> [f64; 4] {
    [(x0 + x1) / 2.0, (y0 + y1) / 2.0, x1 - x0, y1 - y0]
}

/// (cx, cy, w, h) → corners.
fn corners(b: [f64; 4]) -> [f64; 4] {
    [
        b[0] - b[2] / 2.0,
        b[1] - b[3] / 2.0,
        b[0] + b[2] / 2.0,
        b[1] + b[3] / 2.0,
    ]
}

/// The source box `[x, y, w, h]` of the object expression `s` refers to (`sentence_refs` into
/// `boxes`); `row` names the row in errors.
pub fn expression_box(
    boxes: &arrow::array::ListArray,
    refs: &arrow::array::Int32Array,
    s: usize,
    row: &str,
) -> Result<[f64; 4]> {
    let o = refs.value(s) as usize;
    if o >= boxes.len() {
        return Err(Error::format(format!(
            "{row}: expression {s} refers to object {o} of {}",
            boxes.len()
        )));
    }
    let bx = boxes.value(o);
    bx.as_primitive::<Float64Type>()
        .values()
        .to_vec()
        .try_into()
        .map_err(|_| Error::format(format!("{row}: a box is not [x, y, w, h]")))
}

/// The expressions of row `r` of a shard batch, for a `size` canvas.
pub fn grounding_items(b: &RecordBatch, r: usize, size: u32) -> Result<Vec<GroundingItem>> {
    let col = |name: &str| {
        b.column_by_name(name)
            .ok_or_else(|| Error::format(format!("image_grounding.v1 shard lacks `{name}`")))
    };
    let layout = layout_of(b, r, size)?;
    let image_id = col("image_id")?.as_string::<i32>().value(r).to_string();
    let boxes = col("boxes")?.as_list::<i32>().value(r);
    let boxes = boxes.as_list::<i32>();
    let sent_ids = col("sentence_ids")?.as_list::<i32>().value(r);
    let sent_ids = sent_ids.as_primitive::<Int64Type>();
    let refs = col("sentence_refs")?.as_list::<i32>().value(r);
    let refs = refs.as_primitive::<Int32Type>();
    let sentences = col("sentences")?.as_list::<i32>().value(r);
    let sentences = sentences.as_string::<i32>();
    let tokens = col("sentence_tokens")?.as_list::<i32>().value(r);
    let tokens = tokens.as_list::<i32>();
    let size = size as f64;
    let mut items = Vec::with_capacity(sentences.len());
    for s in 0..sentences.len() {
        let gt_box = expression_box(boxes, refs, s, &format!("image {image_id}"))?;
        // xyxy × ratio + offset, then (cx, cy, w, h) / size
        let x0 = gt_box[0] * layout.ratio + layout.left as f64;
        let y0 = gt_box[1] * layout.ratio + layout.top as f64;
        let x1 = (gt_box[0] + gt_box[2]) * layout.ratio + layout.left as f64;
        let y1 = (gt_box[1] + gt_box[3]) * layout.ratio + layout.top as f64;
        let c = cxcywh(x0, y0, x1, y1);
        items.push(GroundingItem {
            image_id: image_id.clone(),
            sent_id: sent_ids.value(s),
            sentence: sentences.value(s).to_string(),
            tokens: tokens
                .value(s)
                .as_primitive::<Int32Type>()
                .values()
                .to_vec(),
            gt_box,
            gt_norm: [c[0] / size, c[1] / size, c[2] / size, c[3] / size],
            layout,
        });
    }
    Ok(items)
}

/// The test transform's pixels: the resized image (PIL bilinear) on a black `size` canvas. The
/// canvas outside the image is zeroed after normalisation ([`normalized_images`]).
pub fn grounding_canvas(b: &RecordBatch, r: usize, img: &RgbImage, size: u32) -> Result<RgbImage> {
    let l = layout_of(b, r, size)?;
    let resized = resize_rgb_pillow_filter(img, l.width, l.height, PillowFilter::Bilinear);
    let mut canvas = RgbImage {
        width: size,
        height: size,
        pixels: vec![0; (size * size * 3) as usize],
    };
    for y in 0..l.height {
        let src = (y * l.width * 3) as usize;
        let dst = (((l.top + y) * size + l.left) * 3) as usize;
        let n = (l.width * 3) as usize;
        canvas.pixels[dst..dst + n].copy_from_slice(&resized.pixels[src..src + n]);
    }
    Ok(canvas)
}

/// `[B, 3, S, S]`: ToTensor, ImageNet normalisation, zero outside each image's placement.
pub fn normalized_images(batch: &EvalBatch<GroundingItem>, device: Device) -> Tensor {
    let (b, s) = (batch.items.len() as i64, batch.size as i64);
    let raw = Tensor::from_slice(&batch.pixels)
        .view([b, s, s, 3])
        .permute([0, 3, 1, 2])
        .to_device(device)
        .to_kind(Kind::Float)
        / 255.0;
    let stat = |v: &[f64; 3]| {
        Tensor::from_slice(v)
            .to_kind(Kind::Float)
            .to_device(device)
            .view([1, 3, 1, 1])
    };
    let norm = (raw - stat(&IMAGENET_MEAN)) / stat(&IMAGENET_STD);
    let mut mask = vec![0f32; (b * s * s) as usize];
    for (i, it) in batch.items.iter().enumerate() {
        let l = it.layout;
        for y in l.top..l.top + l.height {
            let row = i * (s * s) as usize + (y as usize) * s as usize;
            mask[row + l.left as usize..row + (l.left + l.width) as usize].fill(1.0);
        }
    }
    let mask = Tensor::from_slice(&mask)
        .view([b, 1, s, s])
        .to_device(device);
    norm * mask
}

/// `bbox_prob_mask`: 0 on the coordinate tokens, −10000 elsewhere, `[V]`.
pub fn coordinate_mask(vocab: i64, device: Device) -> Tensor {
    let mut m = vec![-10000f32; vocab as usize];
    for id in FIRST_BIN_ID..=FIRST_BIN_ID + COORD_BINS {
        if let Some(v) = m.get_mut(id as usize) {
            *v = 0.0;
        }
    }
    Tensor::from_slice(&m).to_device(device)
}

/// The text input of every expression: `[CLS]` + at most 18 pieces + `[SEP]`, zero-padded to 20,
/// and its mask, each `[B, 20]`.
pub fn query_ids(items: &[GroundingItem], device: Device) -> (Tensor, Tensor) {
    let mut ids = Vec::with_capacity(items.len() * QUERY_LEN);
    let mut mask = Vec::with_capacity(items.len() * QUERY_LEN);
    for it in items {
        let keep = it.tokens.len().min(QUERY_LEN - 2);
        let mut seq = vec![CLS];
        seq.extend(it.tokens[..keep].iter().map(|&t| t as i64));
        seq.push(SEP);
        let n = seq.len();
        ids.extend(seq);
        ids.extend(std::iter::repeat_n(0i64, QUERY_LEN - n));
        mask.extend(std::iter::repeat_n(1i64, n));
        mask.extend(std::iter::repeat_n(0i64, QUERY_LEN - n));
    }
    let shape = [items.len() as i64, QUERY_LEN as i64];
    (
        Tensor::from_slice(&ids).view(shape).to_device(device),
        Tensor::from_slice(&mask).view(shape).to_device(device),
    )
}

/// The four coordinate tokens of every expression in `batch`.
pub fn locate_batch(
    model: &MplugModel,
    batch: &EvalBatch<GroundingItem>,
    device: Device,
) -> Vec<Vec<i64>> {
    let b = batch.items.len() as i64;
    let (ids, mask) = query_ids(&batch.items, device);
    tch::no_grad(|| {
        let v = model.encode_image(&normalized_images(batch, device), false);
        let t = model.encode_text(&ids, &mask, false);
        let (fv, ft) = model.fuse(&v, &t, &mask, false);
        let (memory, memory_mask) = MplugModel::decoder_memory(&fv, &ft, &mask);
        let mut cache = model.decoder_cache(&memory, &memory_mask);
        let mut next = Tensor::full([b, 1], PREFIX_ID, (Kind::Int64, device));
        let mut out = Vec::new();
        let mut bias: Option<Tensor> = None;
        for _ in 0..4 {
            let logits = model.decode_step(&next, &mut cache);
            let last = logits.select(1, logits.size()[1] - 1).to_kind(Kind::Float);
            let bias = bias.get_or_insert_with(|| coordinate_mask(last.size()[1], device));
            next = (last + &*bias).argmax(-1, false).unsqueeze(1);
            out.push(next.shallow_clone());
        }
        let toks = Tensor::cat(&out, 1).to_device(Device::Cpu);
        Vec::<Vec<i64>>::try_from(&toks).unwrap_or_default()
    })
}

/// The model inputs of a run (`--save-inputs`): images `[N, 3, S, S]` and `input_ids` `[N, 20]`.
#[derive(Debug, Default)]
pub struct GroundingInputs {
    /// Normalised, padded images per batch (CPU).
    pub images: Vec<Tensor>,
    /// Text ids per batch (CPU).
    pub input_ids: Vec<Tensor>,
}

/// Boxes for this rank's expressions of `split`, in split order; with `inputs`, also what went into
/// the model.
pub fn run(
    model: &MplugModel,
    split: &EvalSplit,
    selection: ItemSelection,
    settings: &EvalSettings,
    device: Device,
    progress: &dyn Fn(u64),
    mut inputs: Option<&mut GroundingInputs>,
) -> Result<Vec<GroundingPrediction>> {
    let size = model.config().vision.image_res as u32;
    let mut out = Vec::new();
    let columns = [
        "orig_width",
        "orig_height",
        "boxes",
        "sentence_ids",
        "sentence_refs",
        "sentences",
        "sentence_tokens",
    ];
    stream(
        split,
        &columns,
        &|b, r| grounding_items(b, r, size),
        &|b, r| stored_image(b, r).and_then(|img| grounding_canvas(b, r, &img, size)),
        selection,
        size,
        settings.batch_size,
        &mut |batch| {
            let tokens = locate_batch(model, &batch, device);
            if let Some(inp) = inputs.as_deref_mut() {
                inp.images.push(normalized_images(&batch, Device::Cpu));
                inp.input_ids.push(query_ids(&batch.items, Device::Cpu).0);
            }
            progress(batch.items.len() as u64);
            for (item, toks) in batch.items.into_iter().zip(tokens) {
                let v: Vec<f64> = toks
                    .iter()
                    .map(|&t| (t - FIRST_BIN_ID) as f64 / COORD_BINS as f64)
                    .collect();
                let pred_norm = [v[0], v[1], v[2], v[3]];
                let c = corners(pred_norm).map(|x| x.clamp(0.0, 1.0));
                let iou = box_iou(c, corners(item.gt_norm));
                // back to source pixels: × size, − offset, ÷ ratio
                let l = item.layout;
                let s = size as f64;
                let px = |x: f64, off: u32| (x * s - off as f64) / l.ratio;
                let (x0, y0) = (px(c[0], l.left), px(c[1], l.top));
                let (x1, y1) = (px(c[2], l.left), px(c[3], l.top));
                out.push(GroundingPrediction {
                    item,
                    pred_norm,
                    pred_box: [x0, y0, x1 - x0, y1 - y0],
                    iou,
                    tokens: toks,
                });
            }
            Ok(())
        },
    )?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// TransVG's placement, by hand: 320×240 → ratio 1.05, 336×252, centred 42 px down; odd
    /// leftovers go to the bottom/right (round(d/2 − 0.1) = ⌊d/2⌋).
    #[test]
    fn pad_layout_by_hand() {
        let l = pad_layout(320, 240, 336);
        assert_eq!((l.width, l.height, l.left, l.top), (336, 252, 0, 42));
        assert!((l.ratio - 1.05).abs() < 1e-12);
        let l = pad_layout(100, 33, 32); // 32 × 10.56 → 11 (Python's round), dh = 21 → top 10
        assert_eq!((l.width, l.height, l.left, l.top), (32, 11, 0, 10));
        let l = pad_layout(10, 10, 32); // upscaling fills the canvas
        assert_eq!((l.width, l.height, l.left, l.top), (32, 32, 0, 0));
    }

    /// IoU by hand: unit squares overlapping by half → 0.5 / 1.5; disjoint → 0; identical → 1.
    #[test]
    fn iou_by_hand() {
        let a = [0.0, 0.0, 1.0, 1.0];
        assert!((box_iou(a, [0.5, 0.0, 1.5, 1.0]) - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(box_iou(a, [2.0, 2.0, 3.0, 3.0]), 0.0);
        assert!((box_iou(a, a) - 1.0).abs() < 1e-12);
        let back = corners(cxcywh(0.1, 0.2, 0.5, 0.9));
        assert!(
            back.iter()
                .zip([0.1, 0.2, 0.5, 0.9])
                .all(|(a, b)| (a - b).abs() < 1e-12)
        );
    }
}
