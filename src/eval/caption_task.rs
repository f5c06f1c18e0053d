//! `mplug eval caption`: a caption generated for every image of an `image_text.v1` split, as the
//! reference's `caption_mplug.py` evaluation (reference §3.2): the decoder attends to the visual
//! tokens only, beam search from `[CLS]` (beam 5, min 8, max 25), the top beam decoded and stripped
//! of `[SEP]`/`[CLS]`/`[PAD]`.

use arrow::array::{Array, AsArray, RecordBatch};
use tch::Device;

use super::batches::{EvalBatch, ItemSelection, squash, stream};
use super::settings::EvalSettings;
use super::split::EvalSplit;
use crate::error::{Error, Result};
use crate::model::MplugModel;
use crate::model::generate::{beam_search, greedy};
use crate::text::BertTokenizer;
use crate::text::decode::decode_generated;

/// One image to caption.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CaptionItem {
    /// `image_id`.
    pub image_id: String,
    /// Its stored (raw) reference captions.
    pub references: Vec<String>,
}

/// A generated caption.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CaptionPrediction {
    /// The image.
    pub item: CaptionItem,
    /// The decoded caption.
    pub caption: String,
    /// The top beam's token ids (start token and EOS included).
    pub tokens: Vec<i64>,
}

/// Row `r` as its one item.
pub fn caption_items(b: &RecordBatch, r: usize) -> Result<Vec<CaptionItem>> {
    let col = |name: &str| {
        b.column_by_name(name)
            .ok_or_else(|| Error::format(format!("image_text.v1 shard lacks column `{name}`")))
    };
    let refs = col("captions")?.as_list::<i32>().value(r);
    let refs = refs.as_string::<i32>();
    Ok(vec![CaptionItem {
        image_id: col("image_id")?.as_string::<i32>().value(r).to_string(),
        references: (0..refs.len()).map(|i| refs.value(i).to_string()).collect(),
    }])
}

/// Captions one batch: the top hypothesis per image.
pub fn caption_batch(
    model: &MplugModel,
    batch: &EvalBatch<CaptionItem>,
    settings: &EvalSettings,
    device: Device,
) -> Vec<Vec<i64>> {
    tch::no_grad(|| {
        let v = model.encode_image(&batch.images(device), false);
        let mask = MplugModel::visual_memory_mask(&v);
        let g = &settings.generate;
        if g.beam_size <= 1 {
            greedy(model, &v, &mask, None, g)
                .into_iter()
                .map(|h| h.tokens)
                .collect()
        } else {
            beam_search(model, &v, &mask, None, g)
                .into_iter()
                .map(|hs| hs.into_iter().next().map(|h| h.tokens).unwrap_or_default())
                .collect()
        }
    })
}

/// Captions this rank's images of `split`, in split order; `progress` gets the count done.
pub fn run(
    model: &MplugModel,
    tokenizer: &BertTokenizer,
    split: &EvalSplit,
    selection: ItemSelection,
    settings: &EvalSettings,
    device: Device,
    progress: &dyn Fn(u64),
) -> Result<Vec<CaptionPrediction>> {
    let mut out = Vec::new();
    let image_res = model.config().vision.image_res as u32;
    stream(
        split,
        &["captions"],
        &caption_items,
        &squash(image_res),
        selection,
        image_res,
        settings.batch_size,
        &mut |batch| {
            let tokens = caption_batch(model, &batch, settings, device);
            progress(batch.items.len() as u64);
            for (item, tokens) in batch.items.into_iter().zip(tokens) {
                out.push(CaptionPrediction {
                    caption: decode_generated(tokenizer, &tokens),
                    item,
                    tokens,
                });
            }
            Ok(())
        },
    )?;
    Ok(out)
}
