//! The four pre-training objectives (reference §2): ITC with momentum distillation and queues,
//! ITM with in-batch hard negatives, MLM on the fused text, PrefixLM on the decoder; summed with
//! equal weights (§2.6). The loss formulas are small functions of tensors so tests can check each
//! against an independent computation.

use tch::{Kind, Reduction, Tensor};

use super::momentum::{FeatureQueues, MomentumModel};
use super::task::{metric, metric_value};
use crate::error::Result;
use crate::loader::rng::LoaderRng;
use crate::model::MplugModel;

const IGNORE: i64 = -100;
use crate::text::tokenizer::{CLS_ID as CLS, SEP_ID as SEP};

/// ITC targets: every bank entry with the batch row's image index is a positive, weighted 1/count.
pub fn itc_targets(idx: &Tensor, idx_all: &Tensor) -> Tensor {
    let pos = idx.view([-1, 1]).eq_tensor(idx_all).to_kind(Kind::Float);
    &pos / pos.sum_dim_intlist([1i64].as_slice(), true, Kind::Float)
}

/// `−Σ log_softmax(sim)·target`, averaged over rows.
pub fn soft_cross_entropy(sim: &Tensor, targets: &Tensor) -> Tensor {
    -(sim.log_softmax(1, Kind::Float) * targets)
        .sum_dim_intlist([1i64].as_slice(), false, Kind::Float)
        .mean(Kind::Float)
}

/// Batch pairs `[B, B]` that must not be ITM negatives: the same image index (the reference's
/// rule), and with `same_text` also rows whose captions are token-identical — a caption that is
/// verbatim one of the row's own is a match whatever image it came with (measured on the synthetic
/// shapes: 54 % of training captions are also some other image's caption; hard negatives drawn by
/// ITC similarity pick exactly those, and ITM learns to answer "no match" to everything).
pub fn itm_excluded_pairs(idx: &Tensor, input_ids: &Tensor, same_text: bool) -> Tensor {
    let same_image = idx.view([-1, 1]).eq_tensor(&idx.view([1, -1]));
    if !same_text {
        return same_image;
    }
    let len = input_ids.size()[1];
    let equal_tokens = input_ids
        .unsqueeze(1)
        .eq_tensor(&input_ids.unsqueeze(0))
        .sum_dim_intlist([2i64].as_slice(), false, Kind::Int64)
        .eq(len);
    same_image.logical_or(&equal_tokens)
}

/// One index per row of `weights` `[B, N]` (non-negative, no row all zero), drawn with probability
/// proportional to the weight: `torch.multinomial(weights, 1)`'s own algorithm — argmax of
/// `w / q`, q ~ Exp(1) from the same generator, so the same draws and generator state — without its
/// two validity checks, each a host read that waits for the GPU (our weights are valid by
/// construction, [`hard_negative_weights`]). Returns `[B]`.
pub fn sample_one_per_row(weights: &Tensor) -> Tensor {
    let mut q = weights.empty_like();
    let _ = q.exponential_(1.0);
    (weights / q).argmax(-1, false)
}

/// ITM hard-negative sampling weights from in-batch similarities `[B, B]`: softmax per row, the
/// `excluded` pairs ([`itm_excluded_pairs`]) zeroed. A row left with no candidate falls back to
/// uniform over the other rows so `multinomial` never fails.
pub fn hard_negative_weights(sim_in_batch: &Tensor, excluded: &Tensor) -> Tensor {
    let w = sim_in_batch
        .softmax(1, Kind::Float)
        .masked_fill(excluded, 0.0);
    let empty = w
        .sum_dim_intlist([1i64].as_slice(), true, Kind::Float)
        .le(0.0);
    let b = excluded.size()[0];
    let others =
        Tensor::ones([b, b], (Kind::Float, w.device())) - Tensor::eye(b, (Kind::Float, w.device()));
    let others = if b == 1 {
        Tensor::ones([1, 1], (Kind::Float, w.device()))
    } else {
        others
    };
    w.where_self(&empty.logical_not(), &others)
}

/// Masked-LM loss: cross-entropy over selected tokens, with ALBEF's distillation
/// `(1−α)·CE + α·mean(−Σ log_softmax·soft)` over the same tokens when `soft` is given. Zero when
/// no token is selected.
pub fn mlm_loss(logits: &Tensor, labels: &Tensor, soft: Option<(&Tensor, f64)>) -> Tensor {
    let v = logits.size()[2];
    let flat = logits.view([-1, v]);
    let lab = labels.view([-1]);
    let sel = lab.ne(IGNORE);
    // Sum / count rather than torch's mean, and no branch on the count: the same numbers without
    // reading the count on the host (0 selected → 0 / 1 = 0, with zero gradients).
    let n = sel.sum(Kind::Float).clamp_min(1.0);
    let ce = flat.to_kind(Kind::Float).cross_entropy_loss::<Tensor>(
        &lab,
        None,
        Reduction::Sum,
        IGNORE,
        0.0,
    ) / &n;
    match soft {
        Some((soft, alpha)) if alpha > 0.0 => {
            let per_token = -(flat.log_softmax(-1, Kind::Float) * soft.view([-1, v]))
                .sum_dim_intlist([-1i64].as_slice(), false, Kind::Float);
            let distill = (per_token * sel.to_kind(Kind::Float)).sum(Kind::Float) / &n;
            ce * (1.0 - alpha) + distill * alpha
        }
        _ => ce,
    }
}

/// Causal LM loss as `BertPrefixModel`: logits[:, :-1] predict labels[:, 1:], mean over tokens
/// that are not −100.
pub fn lm_loss(logits: &Tensor, labels: &Tensor) -> Tensor {
    let (_, l, v) = logits.size3().unwrap_or((0, 0, 0));
    let shifted = logits
        .narrow(1, 0, l - 1)
        .reshape([-1, v])
        .to_kind(Kind::Float);
    let targets = labels.narrow(1, 1, l - 1).reshape([-1]);
    shifted.cross_entropy_loss::<Tensor>(&targets, None, Reduction::Mean, IGNORE, 0.0)
}

/// PrefixLM inputs on the host: each caption (`[CLS]` + tokens, padded with 0) is split at a
/// uniformly drawn position s ∈ [1, n−1] (n real tokens; the paper gives no exact rule): the
/// prefix `ids[..s]` goes through the encoders and fusion, the decoder reads `[CLS]` + `ids[s..n]`
/// + `[SEP]` and predicts it.
#[derive(Debug, Clone, PartialEq)]
pub struct PrefixSplit {
    /// `[B, Lp]` prefix ids.
    pub prefix_ids: Vec<i64>,
    /// `[B, Lp]` 0/1.
    pub prefix_mask: Vec<i64>,
    /// Lp.
    pub prefix_len: usize,
    /// `[B, Ld]` decoder ids.
    pub decoder_ids: Vec<i64>,
    /// `[B, Ld]` 0/1.
    pub decoder_mask: Vec<i64>,
    /// `[B, Ld]` labels (−100 on padding).
    pub decoder_labels: Vec<i64>,
    /// Ld.
    pub decoder_len: usize,
}

/// Splits `[B, L]` padded ids; `rng(row)` gives each row's random source.
pub fn prefix_split(
    ids: &[i64],
    seq_len: usize,
    mut rng: impl FnMut(usize) -> LoaderRng,
) -> PrefixSplit {
    let rows = ids.len() / seq_len.max(1);
    let mut prefixes = Vec::with_capacity(rows);
    let mut suffixes = Vec::with_capacity(rows);
    for r in 0..rows {
        let row = &ids[r * seq_len..(r + 1) * seq_len];
        let n = row.iter().take_while(|&&t| t != 0).count().max(1);
        let s = if n <= 2 {
            1
        } else {
            1 + rng(r).below(n as u64 - 1) as usize
        };
        let s = s.min(n);
        prefixes.push(row[..s].to_vec());
        let mut d = vec![CLS];
        d.extend_from_slice(&row[s..n]);
        d.push(SEP);
        suffixes.push(d);
    }
    let (prefix_ids, prefix_mask, prefix_len) = crate::loader::text::pad_longest(&prefixes);
    let (decoder_ids, decoder_mask, decoder_len) = crate::loader::text::pad_longest(&suffixes);
    let decoder_labels = decoder_ids
        .iter()
        .zip(&decoder_mask)
        .map(|(&t, &m)| if m == 1 { t } else { IGNORE })
        .collect();
    PrefixSplit {
        prefix_ids,
        prefix_mask,
        prefix_len,
        decoder_ids,
        decoder_mask,
        decoder_labels,
        decoder_len,
    }
}

/// A batch as the objectives need it, on the training device.
#[derive(Debug)]
pub struct PretrainInputs {
    /// `[B, 3, S, S]` normalised float.
    pub images: Tensor,
    /// `[B, L]` caption ids (unmasked).
    pub input_ids: Tensor,
    /// `[B, L]`.
    pub attention_mask: Tensor,
    /// `[B, L]` MLM input (masked) and labels, when MLM is on.
    pub mlm: Option<(Tensor, Tensor)>,
    /// `[B]` image index (the loader's sample index): equal → positives.
    pub idx: Tensor,
    /// PrefixLM inputs: (prefix ids, prefix mask, decoder ids, decoder mask, decoder labels).
    pub prefix: Option<[Tensor; 5]>,
}

/// Which objectives run and with what distillation weight.
#[derive(Debug, Clone, Copy)]
pub struct ObjectiveSwitches {
    /// ITC.
    pub itc: bool,
    /// ITM.
    pub itm: bool,
    /// MLM.
    pub mlm: bool,
    /// PrefixLM.
    pub prefix: bool,
    /// Momentum distillation.
    pub distill: bool,
    /// Distillation weight now.
    pub alpha: f64,
    /// ITM: token-identical captions are never each other's negatives ([`itm_excluded_pairs`]).
    pub itm_mask_same_text: bool,
}

/// The losses of one forward and accuracies for the log.
#[derive(Debug)]
pub struct Losses {
    /// Sum of the enabled losses (what is back-propagated).
    pub total: Tensor,
    /// Each loss as a 0-dim f64 [`metric`] on the device (NaN when off).
    pub itc: Tensor,
    /// ITM.
    pub itm: Tensor,
    /// MLM.
    pub mlm: Tensor,
    /// PrefixLM.
    pub prefix: Tensor,
    /// ITM accuracy on the 3B pairs of the batch.
    pub itm_acc: Tensor,
    /// MLM accuracy on the selected tokens (NaN when none is selected).
    pub mlm_acc: Tensor,
}

/// The pre-training forward. Runs the momentum update first (as ALBEF's forward does; `None`: a
/// simulated rank after the first, whose update rank 0 made), then the
/// enabled objectives; enqueues the momentum features after ITC.
pub fn pretrain_losses(
    model: &MplugModel,
    momentum: &mut MomentumModel,
    momentum_factor: Option<f64>,
    queues: &mut FeatureQueues,
    x: &PretrainInputs,
    sw: ObjectiveSwitches,
) -> Result<Losses> {
    let train = true;
    if let Some(m) = momentum_factor {
        momentum.update(m);
    }
    let visual = model.encode_image(&x.images, train);
    let text = model.encode_text(&x.input_ids, &x.attention_mask, train);
    let temp = model.temp();
    let mut total = Tensor::zeros([], (Kind::Float, x.images.device()));
    let off = || metric_value(f64::NAN, x.images.device());
    let mut out = Losses {
        total: Tensor::new(),
        itc: off(),
        itm: off(),
        mlm: off(),
        prefix: off(),
        itm_acc: off(),
        mlm_acc: off(),
    };
    let need_sims = sw.itc || sw.itm;
    let mut sims: Option<(Tensor, Tensor)> = None;
    // The momentum model's visual states, computed once per step and shared by the ITC banks and
    // MLM distillation (as ALBEF's forward shares `image_embeds_m`).
    let mut momentum_visual: Option<Tensor> = None;
    if need_sims {
        let (image_feat, text_feat) = model.itc_features(&visual, &text);
        // The banks (batch momentum features + queues) are built once, without gradient.
        let (vm, image_m, text_m, image_all, text_all, i2t_t, t2i_t) = tch::no_grad(|| {
            let vm = momentum.model.encode_image(&x.images, train);
            let tm = momentum
                .model
                .encode_text(&x.input_ids, &x.attention_mask, train);
            let (image_m, text_m) = momentum.model.itc_features(&vm, &tm);
            let image_all =
                Tensor::cat(&[image_m.transpose(0, 1), queues.image.shallow_clone()], 1);
            let text_all = Tensor::cat(&[text_m.transpose(0, 1), queues.text.shallow_clone()], 1);
            let idx_all = Tensor::cat(&[x.idx.view([1, -1]), queues.idx.shallow_clone()], 1);
            let targets = itc_targets(&x.idx, &idx_all);
            let (i2t_t, t2i_t) = if sw.distill {
                let sim_i2t_m = image_m.matmul(&text_all) / temp;
                let sim_t2i_m = text_m.matmul(&image_all) / temp;
                (
                    sim_i2t_m.softmax(1, Kind::Float) * sw.alpha + &targets * (1.0 - sw.alpha),
                    sim_t2i_m.softmax(1, Kind::Float) * sw.alpha + &targets * (1.0 - sw.alpha),
                )
            } else {
                (targets.shallow_clone(), targets)
            };
            (vm, image_m, text_m, image_all, text_all, i2t_t, t2i_t)
        });
        momentum_visual = Some(vm);
        let sim_i2t = image_feat.matmul(&text_all) / temp;
        let sim_t2i = text_feat.matmul(&image_all) / temp;
        if sw.itc {
            let l =
                (soft_cross_entropy(&sim_i2t, &i2t_t) + soft_cross_entropy(&sim_t2i, &t2i_t)) / 2.0;
            out.itc = metric(&l);
            total = &total + l;
        }
        queues.enqueue(&image_m, &text_m, &x.idx)?;
        sims = Some((sim_i2t, sim_t2i));
    }
    if sw.itm {
        let (sim_i2t, sim_t2i) = sims.as_ref().expect("sims computed when itm is on");
        let b = x.idx.size()[0];
        let (_, fused_pos) = model.fuse(&visual, &text, &x.attention_mask, train);
        let (neg_image, neg_text) = tch::no_grad(|| {
            let excluded = itm_excluded_pairs(&x.idx, &x.input_ids, sw.itm_mask_same_text);
            let w_t2i = hard_negative_weights(&sim_t2i.narrow(1, 0, b), &excluded);
            let w_i2t = hard_negative_weights(&sim_i2t.narrow(1, 0, b), &excluded);
            (sample_one_per_row(&w_t2i), sample_one_per_row(&w_i2t))
        });
        let image_neg = visual.index_select(0, &neg_image);
        let text_neg = text.index_select(0, &neg_text);
        let mask_neg = x.attention_mask.index_select(0, &neg_text);
        let text_all = Tensor::cat(&[&text, &text_neg], 0);
        let mask_all = Tensor::cat(&[&x.attention_mask, &mask_neg], 0);
        let image_all = Tensor::cat(&[&image_neg, &visual], 0);
        let (_, fused_neg) = model.fuse(&image_all, &text_all, &mask_all, train);
        let logits = model.itm_logits(&Tensor::cat(&[fused_pos, fused_neg], 0));
        let labels = Tensor::cat(
            &[
                Tensor::ones([b], (Kind::Int64, logits.device())),
                Tensor::zeros([2 * b], (Kind::Int64, logits.device())),
            ],
            0,
        );
        let l = logits
            .to_kind(Kind::Float)
            .cross_entropy_for_logits(&labels);
        out.itm = metric(&l);
        out.itm_acc = metric(
            &logits
                .argmax(1, false)
                .eq_tensor(&labels)
                .to_kind(Kind::Float)
                .mean(Kind::Float),
        );
        total = &total + l;
    }
    if sw.mlm
        && let Some((masked, labels)) = &x.mlm
    {
        let t = model.encode_text(masked, &x.attention_mask, train);
        let (_, fused) = model.fuse(&visual, &t, &x.attention_mask, train);
        let logits = model.mlm_logits(&fused);
        let soft = (sw.distill && sw.alpha > 0.0).then(|| {
            tch::no_grad(|| {
                let vm = momentum_visual
                    .take()
                    .unwrap_or_else(|| momentum.model.encode_image(&x.images, train));
                let tm = momentum.model.encode_text(masked, &x.attention_mask, train);
                let (_, fm) = momentum.model.fuse(&vm, &tm, &x.attention_mask, train);
                momentum.model.mlm_logits(&fm).softmax(-1, Kind::Float)
            })
        });
        let l = mlm_loss(&logits, labels, soft.as_ref().map(|s| (s, sw.alpha)));
        out.mlm = metric(&l);
        // hits / selected in f64; 0/0 = NaN when nothing is selected, as "off"
        let sel = labels.ne(IGNORE);
        let hit = logits.argmax(-1, false).eq_tensor(labels).logical_and(&sel);
        out.mlm_acc = hit.sum(Kind::Double) / sel.sum(Kind::Double);
        total = &total + l;
    }
    if sw.prefix
        && let Some([p_ids, p_mask, d_ids, d_mask, d_labels]) = &x.prefix
    {
        let t = model.encode_text(p_ids, p_mask, train);
        let (fv, ft) = model.fuse(&visual, &t, p_mask, train);
        let (memory, memory_mask) = MplugModel::decoder_memory(&fv, &ft, p_mask);
        let logits = model.decode(d_ids, d_mask, &memory, &memory_mask, train);
        let l = lm_loss(&logits, d_labels);
        out.prefix = metric(&l);
        total = &total + l;
    }
    out.total = total;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t2(rows: &[&[f64]]) -> Tensor {
        let flat: Vec<f64> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        Tensor::from_slice(&flat)
            .view([rows.len() as i64, -1])
            .to_kind(Kind::Float)
    }

    fn log_softmax_row(r: &[f64]) -> Vec<f64> {
        let m = r.iter().cloned().fold(f64::MIN, f64::max);
        let lse = m + r.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        r.iter().map(|v| v - lse).collect()
    }

    #[test]
    fn itc_loss_with_duplicate_images_matches_a_hand_computation() {
        // Batch idx [5, 7], bank idx [5, 7, 5, -100]: row 0 has positives at 0 and 2.
        let idx = Tensor::from_slice(&[5i64, 7]);
        let idx_all = Tensor::from_slice(&[5i64, 7, 5, -100]).view([1, -1]);
        let targets = itc_targets(&idx, &idx_all);
        let got: Vec<f32> = Vec::try_from(targets.view([-1])).unwrap();
        assert_eq!(got, vec![0.5, 0.0, 0.5, 0.0, 0.0, 1.0, 0.0, 0.0]);
        let sim = [[1.0, 0.2, 0.3, -0.5], [0.1, 2.0, -1.0, 0.0]];
        let loss = soft_cross_entropy(&t2(&[&sim[0], &sim[1]]), &targets).double_value(&[]);
        let l0 = log_softmax_row(&sim[0]);
        let l1 = log_softmax_row(&sim[1]);
        let want = (-(0.5 * l0[0] + 0.5 * l0[2]) + -l1[1]) / 2.0;
        assert!((loss - want).abs() < 1e-6, "{loss} vs {want}");
    }

    #[test]
    fn hard_negatives_never_pick_the_same_image() {
        let idx = Tensor::from_slice(&[1i64, 2, 1, 3]);
        let ids = Tensor::from_slice(&[101i64, 5, 6, 101, 7, 0, 101, 8, 0, 101, 5, 9]).view([4, 3]);
        let sim = Tensor::randn([4, 4], (Kind::Float, tch::Device::Cpu));
        let w = hard_negative_weights(&sim, &itm_excluded_pairs(&idx, &ids, false));
        let w: Vec<f32> = Vec::try_from(w.view([-1])).unwrap();
        // Rows 0 and 2 share image 1: their columns 0 and 2 are zero.
        for (r, c) in [(0, 0), (0, 2), (2, 0), (2, 2), (1, 1), (3, 3)] {
            assert_eq!(w[r * 4 + c], 0.0, "({r}, {c})");
        }
        assert!(w[1] > 0.0 && w[3] > 0.0);
        // Every row the same image: uniform over the others instead of an all-zero row.
        let same = hard_negative_weights(
            &sim.narrow(0, 0, 2).narrow(1, 0, 2),
            &itm_excluded_pairs(&Tensor::from_slice(&[4i64, 4]), &ids.narrow(0, 0, 2), false),
        );
        let same: Vec<f32> = Vec::try_from(same.view([-1])).unwrap();
        assert_eq!(same, vec![0.0, 1.0, 1.0, 0.0]);
    }

    #[test]
    fn token_identical_captions_are_not_negatives_when_asked() {
        // Four images; rows 0 and 2 carry the same caption, row 3 shares a prefix with row 0 only.
        let idx = Tensor::from_slice(&[1i64, 2, 3, 4]);
        let ids = Tensor::from_slice(&[101i64, 5, 6, 101, 7, 0, 101, 5, 6, 101, 5, 9]).view([4, 3]);
        let pairs = |same_text| -> Vec<bool> {
            Vec::try_from(itm_excluded_pairs(&idx, &ids, same_text).view([-1])).unwrap()
        };
        let off = pairs(false);
        let on = pairs(true);
        for r in 0..4 {
            for c in 0..4 {
                let want_off = r == c;
                let want_on = r == c || (r % 2 == 0 && c % 2 == 0 && r < 3 && c < 3);
                assert_eq!(off[r * 4 + c], want_off, "reference rule ({r}, {c})");
                assert_eq!(on[r * 4 + c], want_on, "same-text rule ({r}, {c})");
            }
        }
    }

    #[test]
    fn mlm_and_lm_losses_match_hand_computations() {
        // Vocabulary 3, one row of length 3, token 1 selected with label 2.
        let logits = t2(&[&[0.0, 1.0, 2.0], &[1.0, 0.0, -1.0], &[0.5, 0.5, 0.5]]).view([1, 3, 3]);
        let labels = Tensor::from_slice(&[-100i64, 2, -100]).view([1, 3]);
        let ce = mlm_loss(&logits, &labels, None).double_value(&[]);
        let want_ce = -log_softmax_row(&[1.0, 0.0, -1.0])[2];
        assert!((ce - want_ce).abs() < 1e-6);
        let soft = t2(&[&[1.0, 0.0, 0.0], &[0.2, 0.3, 0.5], &[1.0, 0.0, 0.0]]).view([1, 3, 3]);
        let d = mlm_loss(&logits, &labels, Some((&soft, 0.4))).double_value(&[]);
        let ls = log_softmax_row(&[1.0, 0.0, -1.0]);
        let kd = -(0.2 * ls[0] + 0.3 * ls[1] + 0.5 * ls[2]);
        assert!((d - (0.6 * want_ce + 0.4 * kd)).abs() < 1e-6);
        // No selected token: zero, not NaN.
        let none = Tensor::full([1, 3], -100, (Kind::Int64, tch::Device::Cpu));
        assert_eq!(mlm_loss(&logits, &none, None).double_value(&[]), 0.0);
        // LM: positions 0, 1 predict labels 1, 2 (label at 2 ignored) → only position 0 counts.
        let lm_labels = Tensor::from_slice(&[101i64, 1, -100]).view([1, 3]);
        let lm = lm_loss(&logits, &lm_labels).double_value(&[]);
        assert!((lm - -log_softmax_row(&[0.0, 1.0, 2.0])[1]).abs() < 1e-6);
    }

    #[test]
    fn prefix_split_keeps_every_token_once_and_ends_the_suffix_with_sep() {
        let ids = vec![101, 5, 6, 7, 8, 101, 9, 0, 0, 0];
        let split = prefix_split(&ids, 5, |r| {
            LoaderRng::new(3, crate::loader::rng::Purpose::Sample, 0, r as u64)
        });
        for r in 0..2 {
            let p: Vec<i64> = split.prefix_ids[r * split.prefix_len..(r + 1) * split.prefix_len]
                .iter()
                .copied()
                .filter(|&t| t != 0)
                .collect();
            let d: Vec<i64> = split.decoder_ids[r * split.decoder_len..(r + 1) * split.decoder_len]
                .iter()
                .copied()
                .filter(|&t| t != 0)
                .collect();
            assert_eq!(p[0], 101);
            assert_eq!((d[0], *d.last().unwrap()), (101, 102));
            let mut joined = p.clone();
            joined.extend_from_slice(&d[1..d.len() - 1]);
            let want: Vec<i64> = ids[r * 5..(r + 1) * 5]
                .iter()
                .copied()
                .filter(|&t| t != 0)
                .collect();
            assert_eq!(joined, want, "row {r}");
            assert!(d.len() >= 3, "at least one suffix token");
        }
        // Labels are the decoder ids with padding ignored.
        for (k, &l) in split.decoder_labels.iter().enumerate() {
            let want = if split.decoder_mask[k] == 1 {
                split.decoder_ids[k]
            } else {
                -100
            };
            assert_eq!(l, want);
        }
    }
}
