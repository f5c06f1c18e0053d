//! `mplug eval snli-ve` and `mplug eval nlvr2`: classification of statements over an
//! `image_statement.v1` split. mPLUG released neither model (reference §3.6), so both heads are
//! designed here, on the fused text `[CLS]` as ALBEF's `model_ve.py` puts its head:
//!
//! - **SNLI-VE** (one image): image (test transform) and `[CLS]` + the hypothesis' stored tokens
//!   (the pipeline's `pre_caption` 30 words) → text encoder → fusion → fused CLS → `cls_head`
//!   (Linear(H,H) → ReLU → Linear(H,3)); labels as the reference's dataset: entailment 2, neutral 1,
//!   contradiction 0.
//! - **NLVR2** (two images): the statement is fused with each image separately (the same fusion
//!   weights) and the two fused CLS vectors are concatenated, left first, into `cls_head`
//!   (Linear(2H,H) → ReLU → Linear(H,2)); label True 1, False 0. This is the "pair" design of
//!   UNITER/ViLT rather than ALBEF's two cross-attention branches per layer: it adds no parameters
//!   inside mPLUG's skip-connected fusion (whose layer layout a branch split would change), so a
//!   pre-trained checkpoint initialises everything but the head.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::Int32Type;
use tch::{Device, Kind, Tensor};

use super::batches::{
    EvalBatch, ItemSelection, squash, stored_image, stored_image_with_prefix, stream, text_tensors,
};
use super::settings::EvalSettings;
use super::split::EvalSplit;
use crate::error::{Error, Result};
use crate::loader::text::with_cls;
use crate::loader::transform::eval_transform;
use crate::model::MplugModel;
use crate::model::heads::ClassifierHead;
use crate::stages::RgbImage;

/// Text length (pre_caption 30 words is applied at ingest; the tokenizer pads to the longest).
const MAX_TOKENS: usize = 512;

/// Which statement task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementTask {
    /// Visual entailment: one image, three classes.
    SnliVe,
    /// Natural language for visual reasoning: two images, two classes.
    Nlvr2,
}

impl StatementTask {
    /// Images per statement.
    pub fn images(self) -> i32 {
        match self {
            StatementTask::SnliVe => 1,
            StatementTask::Nlvr2 => 2,
        }
    }

    /// Output classes of `cls_head`.
    pub fn classes(self) -> i64 {
        match self {
            StatementTask::SnliVe => 3,
            StatementTask::Nlvr2 => 2,
        }
    }

    /// Fused CLS vectors concatenated into the head's input.
    pub fn head_inputs(self) -> i64 {
        self.images() as i64
    }

    /// The command's name.
    pub fn name(self) -> &'static str {
        match self {
            StatementTask::SnliVe => "snli-ve",
            StatementTask::Nlvr2 => "nlvr2",
        }
    }

    /// The head as the provenance records it.
    pub fn head_doc(self) -> &'static str {
        match self {
            StatementTask::SnliVe => {
                "cls_head: Linear(H,H) → ReLU → Linear(H,3) on the fused CLS (ALBEF)"
            }
            StatementTask::Nlvr2 => {
                "cls_head: Linear(2H,H) → ReLU → Linear(H,2) on [fused CLS with left; with right] (pair design)"
            }
        }
    }
}

/// One statement about an image (SNLI-VE) or an image pair (NLVR2).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StatementItem {
    /// The image (Flickr30K id) or the pair (NLVR2 identifier without its sentence number).
    pub sample_id: String,
    /// `pairID` (SNLI-VE) or the NLVR2 `identifier`.
    pub statement_id: String,
    /// Its tokens.
    pub tokens: Vec<i32>,
    /// The label.
    pub label: i32,
}

/// A predicted label.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StatementPrediction {
    /// The statement.
    pub item: StatementItem,
    /// The argmax class.
    pub predicted: i64,
}

fn column<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a std::sync::Arc<dyn Array>> {
    b.column_by_name(name)
        .ok_or_else(|| Error::format(format!("image_statement.v1 shard lacks `{name}`")))
}

/// The statements of row `r`, which must hold `task`'s number of images.
pub fn statement_items(
    task: StatementTask,
    b: &RecordBatch,
    r: usize,
) -> Result<Vec<StatementItem>> {
    let n = column(b, "num_images")?
        .as_primitive::<Int32Type>()
        .value(r);
    if n != task.images() {
        return Err(Error::input(match task {
            StatementTask::SnliVe => {
                "`mplug eval snli-ve` takes one-image statements (SNLI-VE); this dataset holds image pairs (use `mplug eval nlvr2`)"
            }
            StatementTask::Nlvr2 => {
                "`mplug eval nlvr2` takes image pairs (NLVR2); this dataset holds one image per statement (use `mplug eval snli-ve`)"
            }
        }));
    }
    let sample_id = column(b, "sample_id")?
        .as_string::<i32>()
        .value(r)
        .to_string();
    let ids = column(b, "statement_ids")?.as_list::<i32>().value(r);
    let ids = ids.as_string::<i32>();
    let toks = column(b, "statement_tokens")?.as_list::<i32>().value(r);
    let toks = toks.as_list::<i32>();
    let labels = column(b, "labels")?.as_list::<i32>().value(r);
    let labels = labels.as_primitive::<Int32Type>();
    Ok((0..ids.len())
        .map(|s| StatementItem {
            sample_id: sample_id.clone(),
            statement_id: ids.value(s).to_string(),
            tokens: toks.value(s).as_primitive::<Int32Type>().values().to_vec(),
            label: labels.value(s),
        })
        .collect())
}

/// NLVR2's test transform: each image of the pair squashed to `size` (bicubic, as every
/// reference test transform), left above right.
pub fn pair_images(b: &RecordBatch, r: usize, size: u32) -> Result<RgbImage> {
    let left = eval_transform(&stored_image(b, r)?, size);
    let right = eval_transform(&stored_image_with_prefix(b, r, "right_")?, size);
    let mut pixels = left.pixels;
    pixels.extend_from_slice(&right.pixels);
    Ok(RgbImage {
        width: size,
        height: 2 * size,
        pixels,
    })
}

/// Class logits `[B, classes]` of a batch.
pub fn classify_batch(
    model: &MplugModel,
    head: &ClassifierHead,
    batch: &EvalBatch<StatementItem>,
    device: Device,
) -> Tensor {
    let seqs: Vec<Vec<i64>> = batch
        .items
        .iter()
        .map(|it| with_cls(&it.tokens, MAX_TOKENS))
        .collect();
    let (ids, mask) = text_tensors(&seqs, device);
    let frames = batch.frames() as i64;
    tch::no_grad(|| {
        statement_logits(
            model,
            head,
            &batch.images(device),
            &ids,
            &mask,
            frames,
            false,
        )
    })
}

/// Class logits `[B, classes]` of statements `ids` `[B, L]` about `images` `[B·F, 3, S, S]` (F
/// images per statement, statement after statement): each image fused with the statement, the F
/// fused CLS concatenated into the head. Training and evaluation share it.
pub fn statement_logits(
    model: &MplugModel,
    head: &ClassifierHead,
    images: &Tensor,
    ids: &Tensor,
    mask: &Tensor,
    frames: i64,
    train: bool,
) -> Tensor {
    let t = model.encode_text(ids, mask, train);
    let v = model.encode_image(images, train);
    let dims = v.size(); // [B·F, N, D]
    let (bf, n, d) = (dims[0], dims[1], dims[2]);
    // [B·F, N, D] → F tensors of [B, N, D] (image f of every item)
    let v = v.view([bf / frames, frames, n, d]);
    let cls: Vec<Tensor> = (0..frames)
        .map(|f| {
            let (_, ft) = model.fuse(&v.select(1, f), &t, mask, train);
            ft.select(1, 0)
        })
        .collect();
    head.forward(&Tensor::cat(&cls, 1)).to_kind(Kind::Float)
}

/// Predictions for this rank's statements of `split`, in split order.
#[allow(clippy::too_many_arguments)]
pub fn run(
    task: StatementTask,
    model: &MplugModel,
    head: &ClassifierHead,
    split: &EvalSplit,
    selection: ItemSelection,
    settings: &EvalSettings,
    device: Device,
    progress: &dyn Fn(u64),
) -> Result<Vec<StatementPrediction>> {
    let size = model.config().vision.image_res as u32;
    let mut columns = vec!["num_images", "statement_ids", "statement_tokens", "labels"];
    if task == StatementTask::Nlvr2 {
        columns.extend([
            "right_width",
            "right_height",
            "right_image_codec",
            "right_image",
        ]);
    }
    let squash_one = squash(size);
    let transform = move |b: &RecordBatch, r: usize| match task {
        StatementTask::SnliVe => squash_one(b, r),
        StatementTask::Nlvr2 => pair_images(b, r, size),
    };
    let mut out = Vec::new();
    stream(
        split,
        &columns,
        &|b, r| statement_items(task, b, r),
        &transform,
        selection,
        size,
        settings.batch_size,
        &mut |batch| {
            let logits = classify_batch(model, head, &batch, device);
            let predicted = Vec::<i64>::try_from(logits.argmax(-1, false).to_device(Device::Cpu))?;
            progress(batch.items.len() as u64);
            for (item, p) in batch.items.into_iter().zip(predicted) {
                out.push(StatementPrediction { item, predicted: p });
            }
            Ok(())
        },
    )?;
    Ok(out)
}
