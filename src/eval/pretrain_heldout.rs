//! Held-out evaluation of the pre-training objectives, to see a run learn: ITC recall@1 in both
//! directions over the whole held-out set, ITM accuracy on each positive pair and one in-batch
//! negative (the next row's image), MLM accuracy on 15 % masked tokens. The images get the
//! evaluation resize, the masks come from a fixed seed, so every evaluation sees the same inputs.

use std::collections::HashSet;
use std::sync::Arc;

use serde::Serialize;
use tch::{Device, Kind, Tensor};

use crate::error::Result;
use crate::loader::index::DatasetIndex;
use crate::loader::{Loader, LoaderConfig, LoaderState};
use crate::model::MplugModel;

/// Held-out metrics with their chance levels.
#[derive(Debug, Clone, Serialize)]
pub struct HeldoutMetrics {
    /// Optimiser step of the model.
    pub step: u64,
    /// Samples evaluated.
    pub samples: u64,
    /// Image → text recall@1 (fraction).
    pub itc_r1_i2t: f64,
    /// Text → image recall@1.
    pub itc_r1_t2i: f64,
    /// Chance level of recall@1 (1 / samples).
    pub itc_r1_chance: f64,
    /// ITM accuracy over positives and negatives (chance 0.5: as many of each).
    pub itm_acc: f64,
    /// MLM accuracy on masked tokens.
    pub mlm_acc: f64,
    /// Share of masked tokens equal to the most frequent masked token (a majority-class baseline).
    pub mlm_majority: f64,
}

/// Evaluates `model` on `index` (every sample once, in the loader's order for `seed`).
pub fn evaluate(
    model: &MplugModel,
    index: Arc<DatasetIndex>,
    image_size: u32,
    max_tokens: usize,
    seed: u64,
    device: Device,
    step: u64,
) -> Result<HeldoutMetrics> {
    let cfg = LoaderConfig {
        seed,
        batch_size: 64,
        image_size,
        train: false,
        max_tokens,
        mlm_probability: 0.15,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        drop_last: false,
        epochs: 1,
        ..LoaderConfig::default()
    };
    let state = LoaderState {
        seed,
        epoch: 0,
        position: 0,
    };
    let mut loader = Loader::start(index, Arc::new(HashSet::new()), cfg, state)?;
    let _guard = tch::no_grad_guard();
    let (mut image_feats, mut text_feats, mut idxs) = (Vec::new(), Vec::new(), Vec::new());
    let (mut itm_hit, mut itm_n) = (0i64, 0i64);
    let (mut mlm_hit, mut mlm_n) = (0i64, 0i64);
    let mut masked_tokens: Vec<i64> = Vec::new();
    while let Some(b) = loader.next_host() {
        let b = b?;
        let t = b.to_tensors(device, true);
        let labels = t.mlm_labels.as_ref().map(|l| l.shallow_clone());
        let orig = Tensor::from_slice(&b.caption_ids())
            .view([b.batch as i64, b.seq_len as i64])
            .to_device(device);
        let idx = Tensor::from_slice(&b.sample_indices()).to_device(device);
        let visual = model.encode_image(&t.images, false);
        let text = model.encode_text(&orig, &t.attention_mask, false);
        let (fi, ft) = model.itc_features(&visual, &text);
        image_feats.push(fi);
        text_feats.push(ft);
        idxs.push(idx.shallow_clone());
        // ITM: positives, and each text with the next row's image (skipped when the same image).
        let (_, fused) = model.fuse(&visual, &text, &t.attention_mask, false);
        let pos = model.itm_logits(&fused).argmax(1, false);
        itm_hit += pos.eq(1).sum(Kind::Int64).int64_value(&[]);
        itm_n += b.batch as i64;
        if b.batch > 1 {
            let rolled = visual.roll([1], [0]);
            let differs = idx.ne_tensor(&idx.roll([1], [0]));
            let (_, fneg) = model.fuse(&rolled, &text, &t.attention_mask, false);
            let neg = model.itm_logits(&fneg).argmax(1, false);
            itm_hit += neg
                .eq(0)
                .logical_and(&differs)
                .sum(Kind::Int64)
                .int64_value(&[]);
            itm_n += differs.sum(Kind::Int64).int64_value(&[]);
        }
        if let Some(l) = &labels {
            let tm = model.encode_text(&t.input_ids, &t.attention_mask, false);
            let (_, fm) = model.fuse(&visual, &tm, &t.attention_mask, false);
            let pred = model.mlm_logits(&fm).argmax(-1, false);
            let sel = l.ne(-100);
            mlm_hit += pred
                .eq_tensor(l)
                .logical_and(&sel)
                .sum(Kind::Int64)
                .int64_value(&[]);
            mlm_n += sel.sum(Kind::Int64).int64_value(&[]);
            masked_tokens.extend(Vec::<i64>::try_from(
                l.masked_select(&sel).to_device(Device::Cpu),
            )?);
        }
    }
    let images = Tensor::cat(&image_feats, 0);
    let texts = Tensor::cat(&text_feats, 0);
    let idx = Tensor::cat(&idxs, 0);
    let n = idx.size()[0];
    let sims = images.matmul(&texts.transpose(0, 1));
    let r1 = |best: Tensor| {
        idx.index_select(0, &best)
            .eq_tensor(&idx)
            .to_kind(Kind::Double)
            .mean(Kind::Double)
            .double_value(&[])
    };
    let majority = {
        let mut counts = std::collections::HashMap::new();
        for t in &masked_tokens {
            *counts.entry(*t).or_insert(0u64) += 1;
        }
        counts.values().copied().max().unwrap_or(0) as f64 / masked_tokens.len().max(1) as f64
    };
    Ok(HeldoutMetrics {
        step,
        samples: n as u64,
        itc_r1_i2t: r1(sims.argmax(1, false)),
        itc_r1_t2i: r1(sims.argmax(0, false)),
        itc_r1_chance: 1.0 / n.max(1) as f64,
        itm_acc: itm_hit as f64 / itm_n.max(1) as f64,
        mlm_acc: mlm_hit as f64 / mlm_n.max(1) as f64,
        mlm_majority: majority,
    })
}
