//! n-gram counts (n = 1..=4) of whitespace tokens, as BLEU's and CIDEr's `precook` build them.

use std::collections::HashMap;

/// An n-gram: its tokens.
pub type Ngram = Vec<String>;

/// How often each 1- to 4-gram of `tokens` occurs.
pub fn ngram_counts(tokens: &[&str]) -> HashMap<Ngram, usize> {
    let mut counts = HashMap::new();
    for n in 1..=4 {
        for w in tokens.windows(n) {
            *counts
                .entry(w.iter().map(|s| s.to_string()).collect())
                .or_insert(0) += 1;
        }
    }
    counts
}
