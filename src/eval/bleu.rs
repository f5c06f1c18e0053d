//! BLEU-1..4 as pycocoevalcap computes it (`bleu_scorer.py`, option `closest`): n-gram counts
//! clipped by the largest count in any single reference, the closest reference length (ties to the
//! shorter) for the brevity penalty, and the corpus score from summed counts.

use std::collections::HashMap;

use super::ngrams::{Ngram, ngram_counts};

/// Per-caption statistics: hypothesis length, closest reference length, guesses and matches per n.
struct Comps {
    testlen: usize,
    reflen: usize,
    guess: [usize; 4],
    correct: [usize; 4],
}

fn comps(hypothesis: &str, references: &[String]) -> Comps {
    let refs: Vec<Vec<&str>> = references
        .iter()
        .map(|r| r.split_whitespace().collect())
        .collect();
    let mut max_counts: HashMap<Ngram, usize> = HashMap::new();
    for r in &refs {
        for (g, c) in ngram_counts(r) {
            let m = max_counts.entry(g).or_insert(0);
            *m = (*m).max(c);
        }
    }
    let hyp: Vec<&str> = hypothesis.split_whitespace().collect();
    let testlen = hyp.len();
    // min((|l - testlen|, l)): the closest length, the shorter one on a tie
    let reflen = refs
        .iter()
        .map(|r| (r.len().abs_diff(testlen), r.len()))
        .min()
        .map_or(0, |(_, l)| l);
    let mut correct = [0; 4];
    for (g, c) in ngram_counts(&hyp) {
        correct[g.len() - 1] += c.min(max_counts.get(&g).copied().unwrap_or(0));
    }
    let guess = [1, 2, 3, 4].map(|k| (testlen + 1).saturating_sub(k));
    Comps {
        testlen,
        reflen,
        guess,
        correct,
    }
}

const TINY: f64 = 1e-15;
const SMALL: f64 = 1e-9;

fn bleu_from(correct: [usize; 4], guess: [usize; 4], testlen: f64, reflen: f64) -> [f64; 4] {
    let mut out = [0.0; 4];
    let mut product = 1.0;
    for k in 0..4 {
        product *= (correct[k] as f64 + TINY) / (guess[k] as f64 + SMALL);
        out[k] = product.powf(1.0 / (k + 1) as f64);
    }
    let ratio = (testlen + TINY) / (reflen + SMALL);
    if ratio < 1.0 {
        for v in &mut out {
            *v *= (1.0 - 1.0 / ratio).exp();
        }
    }
    out
}

/// Corpus BLEU-1..4 and the per-caption values, over `(hypothesis, references)` pairs of tokenised
/// captions.
pub fn bleu(pairs: &[(String, Vec<String>)]) -> ([f64; 4], Vec<[f64; 4]>) {
    let mut per = Vec::with_capacity(pairs.len());
    let (mut testlen, mut reflen) = (0usize, 0usize);
    let (mut guess, mut correct) = ([0usize; 4], [0usize; 4]);
    for (h, refs) in pairs {
        let c = comps(h, refs);
        testlen += c.testlen;
        reflen += c.reflen;
        for k in 0..4 {
            guess[k] += c.guess[k];
            correct[k] += c.correct[k];
        }
        per.push(bleu_from(
            c.correct,
            c.guess,
            c.testlen as f64,
            c.reflen as f64,
        ));
    }
    (
        bleu_from(correct, guess, testlen as f64, reflen as f64),
        per,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-computed: hypothesis "the cat sat" vs reference "the cat sat on the mat": every n-gram
    /// of the hypothesis matches (3, 2, 1 of them; 0 4-grams to guess), brevity penalty
    /// exp(1 - 6/3) = e^-1.
    #[test]
    fn hand_computed_brevity_and_precisions() {
        let (corpus, _) = bleu(&[("the cat sat".into(), vec!["the cat sat on the mat".into()])]);
        let bp = (1.0 - (6.0 + SMALL) / (3.0 + TINY)).exp(); // e^-1 up to the guards
        assert!((bp - (-1.0f64).exp()).abs() < 1e-9);
        assert!((corpus[0] - bp).abs() < 1e-9, "{corpus:?}");
        assert!((corpus[2] - bp).abs() < 1e-9);
        // BLEU-4: the geometric mean with p4 = (0 + 1e-15) / (0 + 1e-9), tiny but not zero
        let p = |c: f64, g: f64| (c + TINY) / (g + SMALL);
        let b4 = (p(3.0, 3.0) * p(2.0, 2.0) * p(1.0, 1.0) * p(0.0, 0.0)).powf(0.25) * bp;
        assert!((corpus[3] - b4).abs() < 1e-12);
    }
}
