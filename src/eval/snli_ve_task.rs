//! `mplug eval snli-ve`: visual entailment over an `image_statement.v1` split. mPLUG released no
//! SNLI-VE model (reference §3.6); this follows ALBEF's `model_ve.py`, the design the paper's table
//! implies: the image (test transform), the hypothesis as `[CLS]` + its stored tokens (the pipeline's
//! `pre_caption` 30 words), text encoder → fusion, the fused text CLS through `cls_head` (Linear →
//! ReLU → Linear to 3), argmax; labels as the reference's dataset: entailment 2, neutral 1,
//! contradiction 0.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::Int32Type;
use tch::{Device, Kind, Tensor};

use super::batches::{EvalBatch, ItemSelection, squash, stream, text_tensors};
use super::settings::EvalSettings;
use super::split::EvalSplit;
use crate::error::{Error, Result};
use crate::loader::text::with_cls;
use crate::model::MplugModel;
use crate::model::heads::ClassifierHead;

/// Classes of SNLI-VE.
pub const CLASSES: i64 = 3;
/// Text length (ALBEF's VE: pre_caption 30 words; the tokenizer pads to the longest).
const MAX_TOKENS: usize = 512;

/// One hypothesis about an image.
#[derive(Debug, Clone)]
pub struct StatementItem {
    /// The image (Flickr30K id).
    pub sample_id: String,
    /// `pairID`.
    pub statement_id: String,
    /// Its tokens.
    pub tokens: Vec<i32>,
    /// The label (2/1/0).
    pub label: i32,
}

/// A predicted label.
#[derive(Debug, Clone)]
pub struct StatementPrediction {
    /// The hypothesis.
    pub item: StatementItem,
    /// The argmax class.
    pub predicted: i64,
}

/// The statements of row `r` (one-image rows only).
pub fn statement_items(b: &RecordBatch, r: usize) -> Result<Vec<StatementItem>> {
    let col = |name: &str| {
        b.column_by_name(name)
            .ok_or_else(|| Error::format(format!("image_statement.v1 shard lacks `{name}`")))
    };
    let n = col("num_images")?.as_primitive::<Int32Type>().value(r);
    if n != 1 {
        return Err(Error::input(
            "`mplug eval snli-ve` takes one-image statements (SNLI-VE); this dataset holds image pairs (NLVR2)",
        ));
    }
    let sample_id = col("sample_id")?.as_string::<i32>().value(r).to_string();
    let ids = col("statement_ids")?.as_list::<i32>().value(r);
    let ids = ids.as_string::<i32>();
    let toks = col("statement_tokens")?.as_list::<i32>().value(r);
    let toks = toks.as_list::<i32>();
    let labels = col("labels")?.as_list::<i32>().value(r);
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

/// Class logits `[B, 3]` of a batch.
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
    tch::no_grad(|| {
        let v = model.encode_image(&batch.images(device), false);
        let t = model.encode_text(&ids, &mask, false);
        let (_, ft) = model.fuse(&v, &t, &mask, false);
        head.forward(&ft.select(1, 0)).to_kind(Kind::Float)
    })
}

/// Predictions for this rank's statements of `split`, in split order.
pub fn run(
    model: &MplugModel,
    head: &ClassifierHead,
    split: &EvalSplit,
    selection: ItemSelection,
    settings: &EvalSettings,
    device: Device,
    progress: &dyn Fn(u64),
) -> Result<Vec<StatementPrediction>> {
    let size = model.config().vision.image_res as u32;
    let mut out = Vec::new();
    stream(
        split,
        &["num_images", "statement_ids", "statement_tokens", "labels"],
        &statement_items,
        &squash(size),
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
