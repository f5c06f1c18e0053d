//! CIDEr-D as pycocoevalcap computes it (`cider_scorer.py`): tf-idf n-gram vectors (n = 1..4) with
//! document frequencies from the references of the images being scored, the clipped similarity
//! `Σ min(h, r)·r / (‖h‖‖r‖)`, a Gaussian length penalty (σ = 6) on the difference of bigram counts,
//! ×10 per image, and the corpus score as the mean over images.

use std::collections::{HashMap, HashSet};

use super::ngrams::Ngram;

type Counts = HashMap<Ngram, f64>;

fn ngram_counts(sentence: &str) -> Counts {
    let words: Vec<&str> = sentence.split_whitespace().collect();
    super::ngrams::ngram_counts(&words)
        .into_iter()
        .map(|(g, c)| (g, c as f64))
        .collect()
}

/// tf-idf vectors per n, their norms, and the "length" the reference uses (the bigram count).
struct Vector {
    weights: [HashMap<Vec<String>, f64>; 4],
    norm: [f64; 4],
    length: f64,
}

fn vector(counts: &Counts, df: &HashMap<Vec<String>, f64>, ref_len: f64) -> Vector {
    let mut weights: [HashMap<Vec<String>, f64>; 4] = Default::default();
    let mut norm = [0.0; 4];
    let mut length = 0.0;
    for (g, &tf) in counts {
        let n = g.len() - 1;
        let idf = ref_len - df.get(g).copied().unwrap_or(0.0).max(1.0).ln();
        let w = tf * idf;
        weights[n].insert(g.clone(), w);
        norm[n] += w * w;
        if n == 1 {
            length += tf;
        }
    }
    Vector {
        weights,
        norm: norm.map(f64::sqrt),
        length,
    }
}

fn similarity(h: &Vector, r: &Vector) -> [f64; 4] {
    const SIGMA: f64 = 6.0;
    let delta = h.length - r.length;
    let mut val = [0.0; 4];
    for (n, v) in val.iter_mut().enumerate() {
        for (g, &wh) in &h.weights[n] {
            let wr = r.weights[n].get(g).copied().unwrap_or(0.0);
            *v += wh.min(wr) * wr;
        }
        if h.norm[n] != 0.0 && r.norm[n] != 0.0 {
            *v /= h.norm[n] * r.norm[n];
        }
        *v *= std::f64::consts::E.powf(-(delta * delta) / (2.0 * SIGMA * SIGMA));
    }
    val
}

/// Corpus CIDEr-D and the per-image values over `(hypothesis, references)` pairs of tokenised
/// captions.
pub fn cider_d(pairs: &[(String, Vec<String>)]) -> (f64, Vec<f64>) {
    let refs: Vec<Vec<Counts>> = pairs
        .iter()
        .map(|(_, rs)| rs.iter().map(|r| ngram_counts(r)).collect())
        .collect();
    let mut df: HashMap<Vec<String>, f64> = HashMap::new();
    for image_refs in &refs {
        let distinct: HashSet<&Vec<String>> = image_refs.iter().flat_map(|c| c.keys()).collect();
        for g in distinct {
            *df.entry(g.clone()).or_insert(0.0) += 1.0;
        }
    }
    let ref_len = (pairs.len() as f64).ln();
    let scores: Vec<f64> = pairs
        .iter()
        .zip(&refs)
        .map(|((h, _), image_refs)| {
            let hv = vector(&ngram_counts(h), &df, ref_len);
            let mut sum = [0.0; 4];
            for rc in image_refs {
                let rv = vector(rc, &df, ref_len);
                for (s, v) in sum.iter_mut().zip(similarity(&hv, &rv)) {
                    *s += v;
                }
            }
            let mean = sum.iter().sum::<f64>() / 4.0;
            mean / image_refs.len() as f64 * 10.0
        })
        .collect();
    let corpus = scores.iter().sum::<f64>() / scores.len().max(1) as f64;
    (corpus, scores)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two images; an n-gram in both images' references has idf 0, so a hypothesis made only of such
    /// n-grams scores 0, and one identical to its single distinct reference scores 10 · (mean over n
    /// of cosine 1 where the vector is non-zero).
    #[test]
    fn hand_computed_idf_and_identity() {
        let pairs = vec![
            ("a".to_string(), vec!["a".to_string()]),
            ("a".to_string(), vec!["a".to_string()]),
        ];
        let (c, _) = cider_d(&pairs);
        assert_eq!(c, 0.0);
        let pairs = vec![
            ("x y z w".to_string(), vec!["x y z w".to_string()]),
            ("p q".to_string(), vec!["r s".to_string()]),
        ];
        let (_, per) = cider_d(&pairs);
        // every n-gram of image 1 has df 1: all four vectors non-zero and identical → 10 · 1
        assert!((per[0] - 10.0).abs() < 1e-12, "{per:?}");
        assert_eq!(per[1], 0.0);
    }
}
