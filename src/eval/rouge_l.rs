//! ROUGE-L as pycocoevalcap computes it (`rouge.py`): tokens are `split(" ")` (an empty caption is
//! one empty token), precision and recall are maximised separately over the references, β = 1.2,
//! and the corpus score is the mean over images.

/// Length of the longest common subsequence of two token lists.
fn lcs(a: &[&str], b: &[&str]) -> usize {
    let mut prev = vec![0usize; b.len() + 1];
    let mut cur = vec![0usize; b.len() + 1];
    for x in a {
        for (j, y) in b.iter().enumerate() {
            cur[j + 1] = if x == y {
                prev[j] + 1
            } else {
                cur[j].max(prev[j + 1])
            };
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// ROUGE-L of one candidate against its references.
pub fn rouge_l(candidate: &str, references: &[String]) -> f64 {
    const BETA: f64 = 1.2;
    let cand: Vec<&str> = candidate.split(' ').collect();
    let (mut prec, mut rec) = (0.0f64, 0.0f64);
    for r in references {
        let toks: Vec<&str> = r.split(' ').collect();
        let l = lcs(&toks, &cand) as f64;
        prec = prec.max(l / cand.len() as f64);
        rec = rec.max(l / toks.len() as f64);
    }
    if prec != 0.0 && rec != 0.0 {
        ((1.0 + BETA.powi(2)) * prec * rec) / (rec + BETA.powi(2) * prec)
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// "a b c d" vs "a c d e": LCS 3, P = R = 3/4, so F = 3/4 for any β.
    #[test]
    fn hand_computed() {
        assert!((rouge_l("a b c d", &["a c d e".into()]) - 0.75).abs() < 1e-12);
        assert_eq!(rouge_l("x", &["y".into()]), 0.0);
        // P and R maximised over different references: P = 1 (ref 1), R = 1 (ref 2)
        let f = rouge_l("a b", &["a b c d".into(), "a b".into()]);
        assert!((f - 1.0).abs() < 1e-12);
    }
}
