//! Text side of a batch: pick a caption, `[CLS] + tokens` truncated to `max_len` with no trailing
//! `[SEP]` (the reference tokenizer's single-sequence rule), right-padding with 0 and a 0/1 mask,
//! and BERT/ALBEF MLM masking.

use super::rng::LoaderRng;

pub use crate::text::tokenizer::{CLS_ID as CLS, MASK_ID as MASK, PAD_ID as PAD, SEP_ID as SEP};
/// bert-base-uncased vocabulary size.
pub const VOCAB: u64 = 30522;

/// `[CLS]` followed by at most `max_len - 1` tokens (HF keeps one slot for the special token).
pub fn with_cls(tokens: &[i32], max_len: usize) -> Vec<i64> {
    let keep = tokens.len().min(max_len.saturating_sub(1));
    std::iter::once(CLS)
        .chain(tokens[..keep].iter().map(|&t| t as i64))
        .collect()
}

/// Pads sequences on the right to the longest one: (ids, attention mask), row-major.
pub fn pad_longest(seqs: &[Vec<i64>]) -> (Vec<i64>, Vec<i64>, usize) {
    let len = seqs.iter().map(Vec::len).max().unwrap_or(0);
    let mut ids = Vec::with_capacity(seqs.len() * len);
    let mut mask = Vec::with_capacity(seqs.len() * len);
    for s in seqs {
        ids.extend_from_slice(s);
        ids.extend(std::iter::repeat_n(PAD, len - s.len()));
        mask.extend(std::iter::repeat_n(1, s.len()));
        mask.extend(std::iter::repeat_n(0, len - s.len()));
    }
    (ids, mask, len)
}

/// MLM masking (ALBEF's `mask`): each non-special token is selected with `prob`; a selected token
/// becomes `[MASK]` with p=0.8, else a random token with p=0.5 (10% overall), else stays (10%).
/// Returns the masked ids and labels (the original id where selected, -100 elsewhere).
pub fn mlm_mask(ids: &[i64], prob: f64, rng: &mut LoaderRng) -> (Vec<i64>, Vec<i64>) {
    let mut out = ids.to_vec();
    let mut labels = vec![-100; ids.len()];
    for (k, &id) in ids.iter().enumerate() {
        if id == PAD || id == CLS || id == SEP {
            continue;
        }
        if rng.unit() >= prob {
            continue;
        }
        labels[k] = id;
        if rng.unit() < 0.8 {
            out[k] = MASK;
        } else if rng.unit() < 0.5 {
            out[k] = rng.below(VOCAB) as i64;
        }
    }
    (out, labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loader::rng::Purpose;

    #[test]
    fn cls_truncation_and_padding_follow_the_reference_tokenizer() {
        assert_eq!(with_cls(&[5, 6, 7], 30), vec![101, 5, 6, 7]);
        // max_length 3 keeps [CLS] + 2 tokens and no [SEP].
        assert_eq!(with_cls(&[5, 6, 7], 3), vec![101, 5, 6]);
        let (ids, mask, len) = pad_longest(&[vec![101, 5], vec![101, 5, 6, 7]]);
        assert_eq!(len, 4);
        assert_eq!(ids, vec![101, 5, 0, 0, 101, 5, 6, 7]);
        assert_eq!(mask, vec![1, 1, 0, 0, 1, 1, 1, 1]);
    }

    #[test]
    fn mlm_rates_are_15_percent_then_80_10_10() {
        let ids: Vec<i64> = std::iter::once(101)
            .chain((0..100_000).map(|i| 1000 + (i % 500)))
            .collect();
        let mut rng = LoaderRng::new(5, Purpose::Sample, 0, 0);
        let (out, labels) = mlm_mask(&ids, 0.15, &mut rng);
        assert_eq!(labels[0], -100);
        assert_eq!(out[0], 101);
        let selected: Vec<usize> = (0..ids.len()).filter(|&k| labels[k] != -100).collect();
        let n = selected.len() as f64;
        assert!((n / 100_000.0 - 0.15).abs() < 0.005, "{n}");
        let masked = selected.iter().filter(|&&k| out[k] == MASK).count() as f64;
        let kept = selected.iter().filter(|&&k| out[k] == ids[k]).count() as f64;
        assert!((masked / n - 0.8).abs() < 0.01, "{}", masked / n);
        // Unchanged: 10%, plus random draws that hit the same token (negligible).
        assert!((kept / n - 0.1).abs() < 0.01, "{}", kept / n);
        assert!(selected.iter().all(|&k| labels[k] == ids[k]));
    }
}
