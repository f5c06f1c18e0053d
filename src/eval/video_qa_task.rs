//! `mplug eval video-qa`: zero-shot MSRVTT-QA / MSVD-QA over a `video_text.v1` split, as the
//! reference's `videoqa_mplug.py` (reference §3.8): every stored frame of a clip squashed to
//! `image_res` (decord's `width = height = S`), CLIP-normalised, through the visual encoder; the
//! frames' tokens concatenated `[N·(P+1), H]`; the raw question through the text encoder and the
//! fusion; `rank_answer` over the answer list (the train split's answers unless a list is given),
//! k_test 128; accuracy = exact match with the stored answer.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Int32Type, Int64Type};
use tch::Device;

use super::answer_ranking::{AnswerList, rank_answers};
use super::batches::{EvalBatch, ItemSelection, stream, text_tensors};
use super::settings::EvalSettings;
use super::split::EvalSplit;
use crate::error::{Error, Result};
use crate::loader::text::CLS;
use crate::loader::transform::eval_transform;
use crate::model::MplugModel;
use crate::stages::{RgbImage, decode_stored};

/// One question about a clip.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct VideoQaItem {
    /// The clip.
    pub video_id: String,
    /// The question's id.
    pub question_id: i64,
    /// The question, raw.
    pub question: String,
    /// Its word pieces.
    pub tokens: Vec<i32>,
    /// The reference answer.
    pub answer: String,
}

/// A ranked answer.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct VideoQaPrediction {
    /// The question.
    pub item: VideoQaItem,
    /// The chosen answer.
    pub prediction: String,
    /// Its probability among the re-scored candidates.
    pub probability: f64,
}

fn column<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a dyn Array> {
    b.column_by_name(name)
        .map(|c| c.as_ref())
        .ok_or_else(|| Error::format(format!("video_text.v1 shard lacks column `{name}`")))
}

/// The questions of row `r`.
pub fn video_qa_items(b: &RecordBatch, r: usize) -> Result<Vec<VideoQaItem>> {
    let video_id = column(b, "video_id")?
        .as_string::<i32>()
        .value(r)
        .to_string();
    let list = |name: &str| -> Result<arrow::array::ArrayRef> {
        Ok(column(b, name)?.as_list::<i32>().value(r))
    };
    let ids = list("question_ids")?;
    let ids = ids.as_primitive::<Int64Type>();
    let qs = list("questions")?;
    let qs = qs.as_string::<i32>();
    let toks = list("question_tokens")?;
    let toks = toks.as_list::<i32>();
    let answers = list("answers")?;
    let answers = answers.as_string::<i32>();
    Ok((0..qs.len())
        .map(|q| VideoQaItem {
            video_id: video_id.clone(),
            question_id: ids.value(q),
            question: qs.value(q).to_string(),
            tokens: toks.value(q).as_primitive::<Int32Type>().values().to_vec(),
            answer: answers.value(q).to_string(),
        })
        .collect())
}

/// A clip's stored frames, each squashed to `size`, stacked vertically.
pub fn clip_frames(b: &RecordBatch, r: usize, size: u32) -> Result<RgbImage> {
    let frames = column(b, "frames")?.as_list::<i32>().value(r);
    let frames = frames.as_binary::<i32>();
    let codec = column(b, "frame_codec")?
        .as_string::<i32>()
        .value(r)
        .to_string();
    let w = column(b, "width")?.as_primitive::<Int32Type>().value(r) as u32;
    let h = column(b, "height")?.as_primitive::<Int32Type>().value(r) as u32;
    if frames.is_empty() {
        return Err(Error::format("a clip without stored frames"));
    }
    let mut pixels = Vec::with_capacity(frames.len() * (size * size * 3) as usize);
    for i in 0..frames.len() {
        let f = decode_stored(frames.value(i), &codec, w, h)
            .map_err(|e| Error::format_caused(format!("stored frame {i}"), e))?;
        pixels.extend_from_slice(&eval_transform(&f, size).pixels);
    }
    Ok(RgbImage {
        width: size,
        height: size * frames.len() as u32,
        pixels,
    })
}

/// The answers of the split named `split` (distinct, in first-seen order): the reference's answer
/// list is the train split's `ans2label`.
pub fn split_answers(dataset: &EvalSplit) -> Result<Vec<String>> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    dataset.for_each_batch(&["answers"], 4096, &mut |b| {
        let l = column(b, "answers")?.as_list::<i32>();
        for i in 0..l.len() {
            let a = l.value(i);
            let a = a.as_string::<i32>();
            for k in 0..a.len() {
                if seen.insert(a.value(k).to_string()) {
                    out.push(a.value(k).to_string());
                }
            }
        }
        Ok(())
    })?;
    Ok(out)
}

/// Ranks the answers of one batch.
pub fn answer_batch(
    model: &MplugModel,
    batch: &EvalBatch<VideoQaItem>,
    list: &AnswerList,
    k: usize,
    device: Device,
) -> Vec<(usize, f64)> {
    let b = batch.items.len() as i64;
    let seqs: Vec<Vec<i64>> = batch
        .items
        .iter()
        .map(|it| {
            // stored tokens may already carry [CLS]
            let body = it.tokens.strip_prefix(&[CLS as i32]).unwrap_or(&it.tokens);
            std::iter::once(CLS)
                .chain(body.iter().map(|&t| t as i64))
                .collect()
        })
        .collect();
    let (ids, mask) = text_tensors(&seqs, device);
    tch::no_grad(|| {
        let v = model.encode_image(&batch.images(device), false); // [B·F, P+1, H]
        let width = v.size().last().copied().unwrap_or(0);
        let v = v.reshape([b, -1, width]); // frames' tokens concatenated: [B, F·(P+1), H]
        let t = model.encode_text(&ids, &mask, false);
        let (fv, ft) = model.fuse(&v, &t, &mask, false);
        let (memory, memory_mask) = MplugModel::decoder_memory(&fv, &ft, &mask);
        rank_answers(model, &memory, &memory_mask, list, k)
    })
}

/// Answers this rank's questions of `split`, in split order.
pub fn run(
    model: &MplugModel,
    split: &EvalSplit,
    list: &AnswerList,
    selection: ItemSelection,
    settings: &EvalSettings,
    device: Device,
    progress: &dyn Fn(u64),
) -> Result<Vec<VideoQaPrediction>> {
    let size = model.config().vision.image_res as u32;
    let mut out = Vec::new();
    let columns = [
        "video_id",
        "frames",
        "frame_codec",
        "width",
        "height",
        "question_ids",
        "questions",
        "question_tokens",
        "answers",
    ];
    stream(
        split,
        &columns,
        &video_qa_items,
        &|b, r| clip_frames(b, r, size),
        selection,
        size,
        settings.batch_size,
        &mut |batch| {
            let ranked = answer_batch(model, &batch, list, settings.k_test, device);
            progress(batch.items.len() as u64);
            for (item, (a, p)) in batch.items.into_iter().zip(ranked) {
                out.push(VideoQaPrediction {
                    item,
                    prediction: list.answers[a].clone(),
                    probability: p,
                });
            }
            Ok(())
        },
    )?;
    Ok(out)
}
