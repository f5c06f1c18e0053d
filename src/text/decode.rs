//! Generated token ids back to text, as the reference's evaluators do: `tokenizer.decode(ids)` of
//! transformers 4.14 (tokens joined by spaces, ` ##` removed, `clean_up_tokenization_spaces`), then
//! the strings `[SEP]`, `[CLS]` and `[PAD]` removed and the result stripped (reference §5).
//! Hand-written because the `tokenizers` crate's WordPiece decoder cleans up differently (it does not
//! re-attach ` ' ` or keep special tokens as text), and the evaluation files must match byte for byte.

use super::tokenizer::BertTokenizer;

/// transformers' `clean_up_tokenization`: the replacements, in their order.
const CLEAN_UP: [(&str, &str); 10] = [
    (" .", "."),
    (" ?", "?"),
    (" !", "!"),
    (" ,", ","),
    (" ' ", "'"),
    (" n't", "n't"),
    (" 'm", "'m"),
    (" 's", "'s"),
    (" 've", "'ve"),
    (" 're", "'re"),
];

/// `tokenizer.decode(ids)` with special tokens kept as text (the reference's call).
pub fn decode_with_specials(tokenizer: &BertTokenizer, ids: &[i64]) -> String {
    let tokens: Vec<String> = ids.iter().map(|&id| tokenizer.id_to_token(id)).collect();
    let mut text = tokens.join(" ").replace(" ##", "").trim().to_string();
    for (from, to) in CLEAN_UP {
        text = text.replace(from, to);
    }
    text
}

/// A generated answer or caption as the reference writes it into its results file.
pub fn decode_generated(tokenizer: &BertTokenizer, ids: &[i64]) -> String {
    decode_with_specials(tokenizer, ids)
        .replace("[SEP]", "")
        .replace("[CLS]", "")
        .replace("[PAD]", "")
        .trim()
        .to_string()
}
