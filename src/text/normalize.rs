//! The reference's text pre-processing (`dataset/utils.py` in mPLUG), ported rule by rule.
//!
//! Written by hand because it is a project-specific sequence of regex substitutions; the `regex` crate
//! would add a dependency for three character classes.

use serde::{Deserialize, Serialize};

/// Which text normalisation a pipeline applies before tokenising captions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextNormalization {
    /// The reference's `pre_caption(text, max_words)` (retrieval, pre-training, NLVR2, SNLI-VE).
    PreCaption,
    /// `text.lower()` only (the reference's COCO captioning path).
    Lower,
    /// No change.
    None,
}

impl TextNormalization {
    /// Applies this normalisation. `max_words == 0` means no word limit.
    pub fn apply(self, text: &str, max_words: usize) -> String {
        match self {
            TextNormalization::PreCaption => pre_caption(text, max_words),
            TextNormalization::Lower => text.to_lowercase(),
            TextNormalization::None => text.to_string(),
        }
    }
}

/// Characters the reference deletes: the regex class `[,.'!?\"()*#:;~]`.
fn is_deleted(c: char) -> bool {
    matches!(
        c,
        ',' | '.' | '\'' | '!' | '?' | '"' | '(' | ')' | '*' | '#' | ':' | ';' | '~'
    )
}

/// Steps 1–3 shared by `pre_caption` and `pre_question`: lower-case, delete punctuation, `-`/`/` → space.
fn lower_strip_punct(text: &str) -> String {
    text.to_lowercase()
        .chars()
        .filter(|c| !is_deleted(*c))
        .map(|c| if c == '-' || c == '/' { ' ' } else { c })
        .collect()
}

/// Python's `str.isspace` set for the characters that matter in captions (regex `\s` in `re` with str
/// patterns matches Unicode whitespace).
fn is_py_space(c: char) -> bool {
    c.is_whitespace()
}

/// `pre_caption(caption, max_words)` from the reference:
///
/// ```python
/// caption = re.sub(r"([,.'!?\"()*#:;~])", '', caption.lower()).replace('-', ' ').replace('/', ' ').replace('<person>', 'person')
/// caption = re.sub(r"\s{2,}", ' ', caption)
/// caption = caption.rstrip('\n').strip(' ')
/// words = caption.split(' ')
/// if len(words) > max_words: caption = ' '.join(words[:max_words])
/// ```
///
/// `max_words == 0` disables truncation.
pub fn pre_caption(text: &str, max_words: usize) -> String {
    let s = lower_strip_punct(text).replace("<person>", "person");
    // re.sub(r"\s{2,}", ' ', s): a run of >= 2 whitespace chars becomes one space; a single one is kept.
    let mut collapsed = String::with_capacity(s.len());
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if is_py_space(chars[i]) {
            let mut j = i;
            while j < chars.len() && is_py_space(chars[j]) {
                j += 1;
            }
            if j - i >= 2 {
                collapsed.push(' ');
            } else {
                collapsed.push(chars[i]);
            }
            i = j;
        } else {
            collapsed.push(chars[i]);
            i += 1;
        }
    }
    let trimmed = collapsed.trim_end_matches('\n').trim_matches(' ');
    truncate_words(trimmed, max_words)
}

/// `pre_question(question, max_words)` from the reference: like `pre_caption` without whitespace
/// collapsing and without the `<person>` rule; trailing spaces stripped.
pub fn pre_question(text: &str, max_words: usize) -> String {
    let s = lower_strip_punct(text);
    truncate_words(s.trim_end_matches(' '), max_words)
}

/// `' '.join(text.split(' ')[:max_words])` (split on single spaces, as Python's `split(' ')`).
fn truncate_words(text: &str, max_words: usize) -> String {
    if max_words == 0 {
        return text.to_string();
    }
    let words: Vec<&str> = text.split(' ').collect();
    if words.len() > max_words {
        words[..max_words].join(" ")
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values worked out by hand from the Python source quoted above.
    #[test]
    fn pre_caption_follows_reference_rules() {
        assert_eq!(
            pre_caption("A man's red-helmet, on a small moped!  ", 30),
            "a mans red helmet on a small moped"
        );
        assert_eq!(
            pre_caption("<person> rides\n\na bike/scooter", 30),
            "person rides a bike scooter"
        );
        assert_eq!(pre_caption("one two three four", 2), "one two");
        // A single tab survives (only runs of >= 2 whitespace characters are collapsed).
        assert_eq!(pre_caption("a\tb", 0), "a\tb");
        assert_eq!(pre_caption("  ...  ", 30), "");
    }

    #[test]
    fn pre_question_keeps_inner_whitespace() {
        assert_eq!(
            pre_question("What  is the man's hat?", 30),
            "what  is the mans hat"
        );
        assert_eq!(pre_question("a b c", 2), "a b");
    }
}
