//! Normalising and tokenising a sample's texts, rejecting the ones that come out empty.

use crate::error::Result;
use crate::shards::manifest::{RejectRecord, RejectStage, RejectUnit};
use crate::text::{BertTokenizer, TextNormalization};

/// Texts that survived, with their token ids, and the rejects for those that did not.
#[derive(Debug, Default)]
pub struct TokenizedTexts {
    /// Indices (into the input) of the kept texts.
    pub kept: Vec<usize>,
    /// Token ids of each kept text.
    pub tokens: Vec<Vec<i32>>,
    /// One reject per dropped text (`sample_id#index`).
    pub rejects: Vec<RejectRecord>,
}

/// Normalises each text (`normalize`, `max_words`), tokenises it and keeps the non-empty ones.
pub fn tokenize_texts(
    texts: &[String],
    normalize: TextNormalization,
    max_words: usize,
    tokenizer: &BertTokenizer,
    source: &str,
    sample_id: &str,
    unit: RejectUnit,
) -> Result<TokenizedTexts> {
    let mut out = TokenizedTexts::default();
    let what = match unit {
        RejectUnit::Question => "question",
        RejectUnit::Statement => "statement",
        _ => "caption",
    };
    for (i, text) in texts.iter().enumerate() {
        let tokens = tokenizer.encode(&normalize.apply(text, max_words))?;
        if tokens.is_empty() {
            out.rejects.push(RejectRecord {
                source: source.to_string(),
                sample_id: format!("{sample_id}#{i}"),
                stage: RejectStage::Annotation,
                unit,
                reason: format!("{what} {text:?} is empty after normalisation"),
            });
            continue;
        }
        out.kept.push(i);
        out.tokens.push(tokens);
    }
    Ok(out)
}
