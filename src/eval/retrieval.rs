//! Image–text retrieval recall as the reference's `itm_eval` computes it (ALBEF/mPLUG
//! `retrieval_mplug.py`): for each image the rank of its best-placed ground-truth text in the
//! image's row of the score matrix, for each text the rank of its image; R@k is the percentage of
//! queries ranked below k, `r_mean` the mean of the six recalls, MdR (video retrieval) the median rank
//! + 1.
//!
//! Order within a row is numpy's `argsort(scores)[::-1]` with a stable sort: higher score first and,
//! among equal scores, the *higher* index first (the reversal of a stable ascending sort). numpy's
//! default `argsort` is stable only for rows of at most 16 entries (insertion sort); beyond that its
//! tie order is an implementation detail (introsort, or SIMD sorts on some CPUs), so ties are resolved
//! as the stable sort does and this is stated rather than imitated.

use serde::Serialize;

/// Recall in percent, named as the reference's result dict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetrievalRecall {
    /// Text retrieval (image → text) R@1.
    pub txt_r1: f64,
    /// Text retrieval R@5.
    pub txt_r5: f64,
    /// Text retrieval R@10.
    pub txt_r10: f64,
    /// Mean of the three text recalls.
    pub txt_r_mean: f64,
    /// Image retrieval (text → image) R@1.
    pub img_r1: f64,
    /// Image retrieval R@5.
    pub img_r5: f64,
    /// Image retrieval R@10.
    pub img_r10: f64,
    /// Mean of the three image recalls.
    pub img_r_mean: f64,
    /// Mean of the two means.
    pub r_mean: f64,
}

/// The 0-based position of each column in a row ordered as `argsort(row)[::-1]` (stable).
fn positions(row: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..row.len()).collect();
    // descending score; ties: higher index first
    order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(b.cmp(&a)));
    let mut pos = vec![0; row.len()];
    for (p, &i) in order.iter().enumerate() {
        pos[i] = p;
    }
    pos
}

/// Rank of each image's best ground-truth text (`img2txt[i]`) in row `i` of `scores_i2t`.
pub fn image_to_text_ranks(scores_i2t: &[Vec<f64>], img2txt: &[Vec<usize>]) -> Vec<usize> {
    scores_i2t
        .iter()
        .zip(img2txt)
        .map(|(row, gts)| {
            let pos = positions(row);
            gts.iter().map(|&t| pos[t]).min().unwrap_or(usize::MAX)
        })
        .collect()
}

/// Rank of each text's image (`txt2img[t]`) in row `t` of `scores_t2i`.
pub fn text_to_image_ranks(scores_t2i: &[Vec<f64>], txt2img: &[usize]) -> Vec<usize> {
    scores_t2i
        .iter()
        .zip(txt2img)
        .map(|(row, &i)| positions(row)[i])
        .collect()
}

/// `100 * |{rank < k}| / n`.
pub fn recall_at(ranks: &[usize], k: usize) -> f64 {
    100.0 * ranks.iter().filter(|&&r| r < k).count() as f64 / ranks.len().max(1) as f64
}

/// numpy's `floor(median(ranks)) + 1` (MdR, 1-based).
pub fn median_rank(ranks: &[usize]) -> f64 {
    if ranks.is_empty() {
        return f64::NAN;
    }
    let mut r: Vec<f64> = ranks.iter().map(|&x| x as f64).collect();
    r.sort_by(f64::total_cmp);
    let n = r.len();
    let median = if n % 2 == 1 {
        r[n / 2]
    } else {
        (r[n / 2 - 1] + r[n / 2]) / 2.0
    };
    median.floor() + 1.0
}

/// The reference's six recalls and their means from both score matrices.
pub fn retrieval_recall(
    scores_i2t: &[Vec<f64>],
    scores_t2i: &[Vec<f64>],
    txt2img: &[usize],
    img2txt: &[Vec<usize>],
) -> RetrievalRecall {
    let tr = image_to_text_ranks(scores_i2t, img2txt);
    let ir = text_to_image_ranks(scores_t2i, txt2img);
    let (txt_r1, txt_r5, txt_r10) = (recall_at(&tr, 1), recall_at(&tr, 5), recall_at(&tr, 10));
    let (img_r1, img_r5, img_r10) = (recall_at(&ir, 1), recall_at(&ir, 5), recall_at(&ir, 10));
    let txt_r_mean = (txt_r1 + txt_r5 + txt_r10) / 3.0;
    let img_r_mean = (img_r1 + img_r5 + img_r10) / 3.0;
    RetrievalRecall {
        txt_r1,
        txt_r5,
        txt_r10,
        txt_r_mean,
        img_r1,
        img_r5,
        img_r10,
        img_r_mean,
        r_mean: (txt_r_mean + img_r_mean) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two images, four texts (texts 0, 1 describe image 0; texts 2, 3 image 1), ranks worked out
    /// by hand from the matrices.
    #[test]
    fn hand_computed_ranks_and_recalls() {
        let i2t = vec![
            vec![0.1, 0.9, 0.5, 0.2], // order 1, 2, 3, 0: best GT (text 1) at 0
            vec![0.8, 0.7, 0.1, 0.6], // order 0, 1, 3, 2: best GT (text 3) at 2
        ];
        let img2txt = vec![vec![0, 1], vec![2, 3]];
        assert_eq!(image_to_text_ranks(&i2t, &img2txt), vec![0, 2]);
        let t2i = vec![
            vec![0.2, 0.3],
            vec![0.9, 0.1],
            vec![0.4, 0.6],
            vec![0.5, 0.5],
        ];
        let txt2img = vec![0, 0, 1, 1];
        // text 3 ties: the higher index (image 1) comes first, as argsort(stable)[::-1]
        assert_eq!(text_to_image_ranks(&t2i, &txt2img), vec![1, 0, 0, 0]);
        let r = retrieval_recall(&i2t, &t2i, &txt2img, &img2txt);
        assert_eq!(
            (r.txt_r1, r.txt_r5, r.img_r1, r.img_r5),
            (50.0, 100.0, 75.0, 100.0)
        );
        assert_eq!(r.txt_r_mean, (50.0 + 100.0 + 100.0) / 3.0);
        assert_eq!(r.r_mean, (r.txt_r_mean + r.img_r_mean) / 2.0);
    }

    #[test]
    fn median_rank_is_numpys_floor_of_median_plus_one() {
        assert_eq!(median_rank(&[0, 4, 1]), 2.0); // median 1 → 2
        assert_eq!(median_rank(&[0, 1, 2, 4]), 2.0); // median 1.5 → floor 1 → 2
        assert!(median_rank(&[]).is_nan());
    }
}
