//! `mplug eval retrieval`: image–text retrieval over an `image_text.v1` split, as the reference's
//! `retrieval_img_mplug.py` evaluation (reference §3.4):
//! 1. every caption (stored tokens, the pipeline's `pre_caption` 30 words) as `[CLS]` + at most 29
//!    tokens padded to 30, through the text encoder; its CLS projected and normalised;
//! 2. every image through the visual encoder (and bridge); its CLS projected and normalised; the
//!    visual tokens kept for ITM;
//! 3. S = image features · text featuresᵀ (no temperature);
//! 4. image → text: each image's top-`k_test` texts by S re-scored by the fusion's ITM positive
//!    logit; every other entry −100; text → image the same with the top-`k_test` images per text;
//! 5. `itm_eval` recalls on the two ITM score matrices.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::Int32Type;
use tch::{Device, Kind, Tensor};

use super::batches::{ItemSelection, squash, stream};
use super::retrieval::{
    RetrievalRecall, image_to_text_ranks, median_rank, retrieval_recall, text_to_image_ranks,
};
use super::settings::EvalSettings;
use super::split::EvalSplit;
use crate::error::{Error, Result};
use crate::loader::text::{PAD, with_cls};
use crate::model::MplugModel;

/// The reference's evaluation text length (`max_length=30`, padded to it).
pub const TEXT_LENGTH: usize = 30;
/// Texts per text-encoder forward (the reference's `text_bs`).
const TEXT_BATCH: usize = 256;

/// One image and its captions.
#[derive(Debug, Clone)]
pub struct RetrievalImage {
    /// `image_id`.
    pub image_id: String,
    /// Raw captions.
    pub captions: Vec<String>,
    /// Their stored tokens.
    pub tokens: Vec<Vec<i32>>,
}

/// Everything the retrieval evaluation computed.
#[derive(Debug)]
pub struct RetrievalOutput {
    /// Image ids, in split order.
    pub image_ids: Vec<String>,
    /// Texts, image after image.
    pub texts: Vec<String>,
    /// Each image's text indices.
    pub img2txt: Vec<Vec<usize>>,
    /// Each text's image index.
    pub txt2img: Vec<usize>,
    /// ITC similarities `[images, texts]`.
    pub sims: Tensor,
    /// ITM scores image → text `[images, texts]` (−100 outside each row's top k).
    pub scores_i2t: Tensor,
    /// ITM scores text → image `[texts, images]`.
    pub scores_t2i: Tensor,
    /// The recalls.
    pub recall: RetrievalRecall,
    /// Median rank (MdR, 1-based) image → text and text → image.
    pub median_ranks: (f64, f64),
}

/// Row `r` as its image.
pub fn retrieval_items(b: &RecordBatch, r: usize) -> Result<Vec<RetrievalImage>> {
    let col = |name: &str| {
        b.column_by_name(name)
            .ok_or_else(|| Error::format(format!("image_text.v1 shard lacks column `{name}`")))
    };
    let caps = col("captions")?.as_list::<i32>().value(r);
    let caps = caps.as_string::<i32>();
    let toks = col("caption_tokens")?.as_list::<i32>().value(r);
    let toks = toks.as_list::<i32>();
    let id = match b.column_by_name("image_id") {
        Some(c) => c,
        None => col("video_id")?,
    };
    Ok(vec![RetrievalImage {
        image_id: id.as_string::<i32>().value(r).to_string(),
        captions: (0..caps.len()).map(|i| caps.value(i).to_string()).collect(),
        tokens: (0..toks.len())
            .map(|i| toks.value(i).as_primitive::<Int32Type>().values().to_vec())
            .collect(),
    }])
}

fn to_rows(t: &Tensor) -> Result<Vec<Vec<f64>>> {
    Ok(Vec::<Vec<f64>>::try_from(
        t.to_kind(Kind::Double).to_device(Device::Cpu),
    )?)
}

/// Image retrieval (`retrieval_img_mplug.py`) or zero-shot video retrieval (`retrieval_vid_mplug.py`,
/// reference §3.8): a clip's feature is the normalised mean of its frames' projected CLS, its ITM
/// memory all frames' tokens, texts `[CLS]` + 34 tokens padded to 35, and a re-ranked entry scores
/// ITM + ITC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetrievalKind {
    /// `image_text.v1`.
    Image,
    /// `video_text.v1`.
    Video,
}

impl RetrievalKind {
    fn text_length(self) -> usize {
        match self {
            RetrievalKind::Image => TEXT_LENGTH,
            RetrievalKind::Video => VIDEO_TEXT_LENGTH,
        }
    }
}

/// Video retrieval's text length (`max_length=35`).
pub const VIDEO_TEXT_LENGTH: usize = 35;

/// Runs the evaluation over the selected images (or clips) of `split` (texts are their captions).
/// With a process group every rank encodes all of them and re-ranks its block of rows by ITM;
/// the score matrices are then summed over ranks (§3.4). Rows a rank does not own start at 0
/// rather than the reference's −100, so the sums equal the one-process matrices exactly (the
/// reference's uniform −100·(N − 1) shift per row does not change any ranking).
#[allow(clippy::too_many_arguments)]
pub fn run(
    model: &MplugModel,
    split: &EvalSplit,
    kind: RetrievalKind,
    selection: ItemSelection,
    settings: &EvalSettings,
    device: Device,
    group: &dyn crate::train::dist::Collective,
    progress: &dyn Fn(u64),
) -> Result<RetrievalOutput> {
    let image_res = model.config().vision.image_res as u32;
    let text_len = kind.text_length();
    let mut images: Vec<RetrievalImage> = Vec::new();
    let mut visual: Vec<Tensor> = Vec::new();
    let mut image_feats: Vec<Tensor> = Vec::new();
    let video_columns = ["video_id", "frames", "frame_codec", "width", "height"];
    let clip = |b: &RecordBatch, r: usize| super::video_qa_task::clip_frames(b, r, image_res);
    let squashed = squash(image_res);
    let (columns, transform): (Vec<&str>, &super::batches::Transform<'_>) = match kind {
        RetrievalKind::Image => (vec!["captions", "caption_tokens"], &squashed),
        RetrievalKind::Video => {
            let mut c = vec!["captions", "caption_tokens"];
            c.extend(video_columns);
            (c, &clip)
        }
    };
    stream(
        split,
        &columns,
        &retrieval_items,
        transform,
        selection,
        image_res,
        settings.batch_size,
        &mut |batch| {
            tch::no_grad(|| {
                let v = model.encode_image(&batch.images(device), false);
                match kind {
                    RetrievalKind::Image => {
                        image_feats.push(model.image_itc_feature(&v));
                        visual.push(v);
                    }
                    RetrievalKind::Video => {
                        let (b, f) = (batch.items.len() as i64, batch.frames() as i64);
                        let (_, n, h) = v.size3().unwrap_or((0, 0, 0));
                        let frames = v.view([b, f, n, h]);
                        image_feats.push(model.video_itc_feature(&frames));
                        visual.push(frames.view([b, f * n, h]));
                    }
                }
            });
            progress(batch.items.len() as u64);
            images.extend(batch.items);
            Ok(())
        },
    )?;
    if images.is_empty() {
        return Err(Error::input(
            "no images to evaluate (empty split or --limit 0)",
        ));
    }
    let mut texts = Vec::new();
    let mut tokens = Vec::new();
    let mut img2txt = Vec::new();
    let mut txt2img = Vec::new();
    for (i, im) in images.iter().enumerate() {
        img2txt.push((texts.len()..texts.len() + im.captions.len()).collect());
        for (c, t) in im.captions.iter().zip(&im.tokens) {
            texts.push(c.clone());
            tokens.push(with_cls(t, text_len));
            txt2img.push(i);
        }
    }
    if texts.is_empty() {
        return Err(Error::input(format!(
            "split `{}` has no captions to retrieve",
            split.split
        )));
    }
    tch::no_grad(|| {
        // texts: padding='max_length' (30; 35 for video), as the reference
        let mut text_states = Vec::new();
        let mut text_masks = Vec::new();
        let mut text_feats = Vec::new();
        for chunk in tokens.chunks(TEXT_BATCH) {
            let mut ids = Vec::with_capacity(chunk.len() * text_len);
            let mut mask = Vec::with_capacity(chunk.len() * text_len);
            for s in chunk {
                ids.extend_from_slice(s);
                ids.extend(std::iter::repeat_n(PAD, text_len - s.len()));
                mask.extend(std::iter::repeat_n(1i64, s.len()));
                mask.extend(std::iter::repeat_n(0i64, text_len - s.len()));
            }
            let shape = [chunk.len() as i64, text_len as i64];
            let ids = Tensor::from_slice(&ids).view(shape).to_device(device);
            let mask = Tensor::from_slice(&mask).view(shape).to_device(device);
            let t = model.encode_text(&ids, &mask, false);
            text_feats.push(model.text_itc_feature(&t));
            text_states.push(t);
            text_masks.push(mask);
        }
        let text_states = Tensor::cat(&text_states, 0);
        let text_masks = Tensor::cat(&text_masks, 0);
        let text_feats = Tensor::cat(&text_feats, 0);
        let visual = Tensor::cat(&visual, 0);
        let image_feats = Tensor::cat(&image_feats, 0);
        let sims = image_feats.matmul(&text_feats.tr());
        let (n_img, n_txt) = (images.len() as i64, texts.len() as i64);
        let opts = (Kind::Float, device);
        let (rank, world) = (group.rank() as i64, group.world() as i64);
        // the reference's row blocks: step = n / N + 1
        let block = |n: i64| {
            let step = n / world + 1;
            (rank * step).min(n)..((rank + 1) * step).min(n)
        };
        let owned_rows = |n: i64, cols: i64| {
            let m = Tensor::zeros([n, cols], opts);
            let r = block(n);
            let _ = m.narrow(0, r.start, r.end - r.start).fill_(-100.0);
            m
        };
        let mut scores_i2t = owned_rows(n_img, n_txt);
        let k = (settings.k_test as i64).min(n_txt);
        for i in block(n_img) {
            let (_, idx) = sims.get(i).topk(k, 0, true, true);
            let v = visual.get(i).unsqueeze(0).expand([k, -1, -1], false);
            let (_, fused) = model.fuse(
                &v,
                &text_states.index_select(0, &idx),
                &text_masks.index_select(0, &idx),
                false,
            );
            let mut itm = model.itm_logits(&fused).select(1, 1).to_kind(Kind::Float);
            if kind == RetrievalKind::Video {
                itm += sims.get(i).index_select(0, &idx).to_kind(Kind::Float);
            }
            let _ = scores_i2t.get(i).index_copy_(0, &idx, &itm);
        }
        let sims_t = sims.tr();
        let mut scores_t2i = owned_rows(n_txt, n_img);
        let k = (settings.k_test as i64).min(n_img);
        for j in block(n_txt) {
            let (_, idx) = sims_t.get(j).topk(k, 0, true, true);
            let t = text_states.get(j).unsqueeze(0).expand([k, -1, -1], false);
            let m = text_masks.get(j).unsqueeze(0).expand([k, -1], false);
            let (_, fused) = model.fuse(&visual.index_select(0, &idx), &t, &m, false);
            let mut itm = model.itm_logits(&fused).select(1, 1).to_kind(Kind::Float);
            if kind == RetrievalKind::Video {
                itm += sims_t.get(j).index_select(0, &idx).to_kind(Kind::Float);
            }
            let _ = scores_t2i.get(j).index_copy_(0, &idx, &itm);
        }
        group.all_reduce_sum(&mut scores_i2t)?;
        group.all_reduce_sum(&mut scores_t2i)?;
        let (rows_i2t, rows_t2i) = (to_rows(&scores_i2t)?, to_rows(&scores_t2i)?);
        let recall = retrieval_recall(&rows_i2t, &rows_t2i, &txt2img, &img2txt);
        let median_ranks = (
            median_rank(&image_to_text_ranks(&rows_i2t, &img2txt)),
            median_rank(&text_to_image_ranks(&rows_t2i, &txt2img)),
        );
        Ok(RetrievalOutput {
            image_ids: images.into_iter().map(|im| im.image_id).collect(),
            texts,
            img2txt,
            txt2img,
            sims: sims.to_device(Device::Cpu),
            scores_i2t: scores_i2t.to_device(Device::Cpu),
            scores_t2i: scores_t2i.to_device(Device::Cpu),
            recall,
            median_ranks,
        })
    })
}
