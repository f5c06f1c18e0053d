//! `mplug eval video-caption`: zero-shot VATEX captioning over a `video_text.v1` split, as the
//! reference's `videocap_mplug.py` (reference §3.8):
//! - every stored frame squashed to `image_res`, the frames' visual tokens concatenated; the decoder
//!   attends to them only;
//! - the prompt quirk: generation starts from `tokenizer("a picture of").input_ids[:, :-1]`, and since
//!   mPLUG's tokenizer appends no `[SEP]`, that drops "of": `[CLS] a picture`;
//! - beam 10, min 15, max 25 (the script's flags; config keys here);
//! - post-processing: the decoded text after the first of "a picture of ", "a video of ",
//!   "a video clip of ", "a video showing ", "a video tutorial on " that it contains (first
//!   occurrence), then " ." appended.

use arrow::array::{Array, AsArray, RecordBatch};
use tch::{Device, Kind, Tensor};

use super::batches::{EvalBatch, ItemSelection, stream};
use super::settings::{EvalSettings, TaskDefaults};
use super::split::EvalSplit;
use crate::error::{Error, Result};
use crate::loader::text::CLS;
use crate::model::MplugModel;
use crate::model::generate::{beam_search, greedy};
use crate::text::BertTokenizer;
use crate::text::decode::decode_generated;

/// `videocap_mplug.py`'s decoding: beam 10, min 15, max 25.
pub const VIDEO_CAPTION_DEFAULTS: TaskDefaults = TaskDefaults {
    beam_size: 10,
    min_length: 15,
    max_length: 25,
};

/// The reference's prompt.
pub const PROMPT: &str = "a picture of";

/// Prefixes whose following text is kept, in the order they are tried.
const PREFIXES: [&str; 5] = [
    "a picture of ",
    "a video of ",
    "a video clip of ",
    "a video showing ",
    "a video tutorial on ",
];

/// One clip to caption.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ClipItem {
    /// `video_id` (VATEX `videoID`).
    pub video_id: String,
    /// Its reference captions.
    pub references: Vec<String>,
}

/// A generated caption.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ClipCaption {
    /// The clip.
    pub item: ClipItem,
    /// The post-processed caption.
    pub caption: String,
    /// The top beam, prompt and EOS included.
    pub tokens: Vec<i64>,
}

/// The prompt's ids with the reference's quirk: `[CLS]` + the prompt's pieces without the last.
pub fn prompt_ids(tokenizer: &BertTokenizer, prompt: &str) -> Result<Vec<i64>> {
    let mut ids = vec![CLS];
    ids.extend(tokenizer.encode(prompt)?.iter().map(|&t| t as i64));
    ids.pop(); // `input_ids[:, :-1]` meant to drop [SEP]; there is none, so a word goes
    if ids.is_empty() {
        ids.push(CLS);
    }
    Ok(ids)
}

/// The reference's post-processing of a decoded caption.
pub fn post_process(text: &str) -> String {
    let kept = PREFIXES
        .iter()
        .find_map(|p| text.find(p).map(|at| &text[at + p.len()..]))
        .unwrap_or(text);
    format!("{kept} .")
}

/// Row `r` as its clip.
pub fn clip_items(b: &RecordBatch, r: usize) -> Result<Vec<ClipItem>> {
    let col = |name: &str| {
        b.column_by_name(name)
            .ok_or_else(|| Error::format(format!("video_text.v1 shard lacks column `{name}`")))
    };
    let refs = col("captions")?.as_list::<i32>().value(r);
    let refs = refs.as_string::<i32>();
    Ok(vec![ClipItem {
        video_id: col("video_id")?.as_string::<i32>().value(r).to_string(),
        references: (0..refs.len()).map(|i| refs.value(i).to_string()).collect(),
    }])
}

/// The top beam of every clip in `batch`, from `prompt`.
pub fn caption_batch(
    model: &MplugModel,
    batch: &EvalBatch<ClipItem>,
    prompt: &[i64],
    settings: &EvalSettings,
    device: Device,
) -> Vec<Vec<i64>> {
    let b = batch.items.len() as i64;
    tch::no_grad(|| {
        let v = model.encode_image(&batch.images(device), false);
        let (_, _, h) = v.size3().unwrap_or((0, 0, 0));
        let v = v.reshape([b, -1, h]);
        let mask = MplugModel::visual_memory_mask(&v);
        let p = Tensor::from_slice(prompt)
            .to_kind(Kind::Int64)
            .to_device(device)
            .unsqueeze(0)
            .repeat([b, 1]);
        let g = &settings.generate;
        if g.beam_size <= 1 {
            greedy(model, &v, &mask, Some(&p), g)
                .into_iter()
                .map(|h| h.tokens)
                .collect()
        } else {
            beam_search(model, &v, &mask, Some(&p), g)
                .into_iter()
                .map(|hs| hs.into_iter().next().map(|h| h.tokens).unwrap_or_default())
                .collect()
        }
    })
}

/// Captions this rank's clips of `split`, in split order.
#[allow(clippy::too_many_arguments)]
pub fn run(
    model: &MplugModel,
    tokenizer: &BertTokenizer,
    split: &EvalSplit,
    prompt: &str,
    selection: ItemSelection,
    settings: &EvalSettings,
    device: Device,
    progress: &dyn Fn(u64),
) -> Result<Vec<ClipCaption>> {
    let size = model.config().vision.image_res as u32;
    let prompt = prompt_ids(tokenizer, prompt)?;
    let mut out = Vec::new();
    let columns = [
        "video_id",
        "frames",
        "frame_codec",
        "width",
        "height",
        "captions",
    ];
    stream(
        split,
        &columns,
        &clip_items,
        &|b, r| super::video_qa_task::clip_frames(b, r, size),
        selection,
        size,
        settings.batch_size,
        &mut |batch| {
            let tokens = caption_batch(model, &batch, &prompt, settings, device);
            progress(batch.items.len() as u64);
            for (item, tokens) in batch.items.into_iter().zip(tokens) {
                out.push(ClipCaption {
                    caption: post_process(&decode_generated(tokenizer, &tokens)),
                    item,
                    tokens,
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

    /// The doc's cases: the text after the prompt phrase, " ." appended; untouched without one.
    #[test]
    fn post_processing_by_hand() {
        assert_eq!(post_process("a picture of a man riding"), "a man riding .");
        assert_eq!(
            post_process("a video of people dancing"),
            "people dancing ."
        );
        assert_eq!(post_process("someone cooks"), "someone cooks .");
        assert_eq!(
            post_process("a video showing a picture of a cat"),
            "a cat .",
            "the first prefix in the list that occurs wins"
        );
    }
}
