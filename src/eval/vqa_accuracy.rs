//! VQA accuracy as the official evaluation computes it (GT-Vision-Lab/VQA `vqaEval.py`).
//!
//! Each question has ten human answers; a prediction scores `min(1, matches / 3)` against every
//! leave-one-out subset of nine, averaged over the ten. Two behaviours exist and both are kept:
//!
//! - [`VqaEvalMode::Official`]: the current official code (commit a013f00, "Fixed processing answers
//!   bug", 2021). Answers and the prediction are stripped; only when the ten answers are not all the
//!   same are they (and the prediction) normalised (punctuation, then numbers/articles/contractions).
//!   This is what papers should report.
//! - [`VqaEvalMode::Legacy`]: the code before that fix, which mPLUG (`vqaTools/vqaEval.py`) and LAVIS
//!   copied: the prediction is always normalised; the answers only get the punctuation step, only
//!   when they differ, and are not stripped. `mplug score vqa --vqa-eval legacy` reproduces numbers
//!   computed with those copies.
//!
//! Text handling follows Python 3 `str` semantics (`strip`, `split`, `lower`, `\d` as Unicode decimal
//! digits), since the oracle and the copies in use today run on Python 3.

use std::collections::HashSet;

/// Which `vqaEval.py` to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VqaEvalMode {
    /// The official evaluation since 2021 (normalise only when the human answers disagree).
    #[default]
    Official,
    /// The pre-2021 code copied by mPLUG and LAVIS (always normalise the prediction).
    Legacy,
}

/// The 21 characters of `processPunctuation` (note: `'`, `:`, `.`, `#`, `$`, `%`, `&`, `*` are not
/// among them).
const PUNCT: [char; 21] = [
    ';', '/', '[', ']', '"', '{', '}', '(', ')', '=', '+', '\\', '_', '-', '>', '<', '@', '`', ',',
    '?', '!',
];

/// Python 3's `str.isspace` (Unicode White_Space plus the four ASCII information separators).
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `re` `\d` on `str`: a Unicode decimal digit (general category Nd).
fn is_py_digit(c: char) -> bool {
    c.is_ascii_digit() || (!c.is_ascii() && is_nd(c))
}

/// Non-ASCII Nd as Python 3.11 knows it (Unicode 14): every Nd character lies in a run of ten
/// starting at one whose digit value is 0; these are the runs' first code points (generated with
/// `unicodedata`). `char::is_numeric` would also accept No and Nl.
fn is_nd(c: char) -> bool {
    const ND_ZEROS: [u32; 65] = [
        0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66, 0xDE6,
        0xE50, 0xED0, 0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90,
        0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0,
        0xFF10, 0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0,
        0x11650, 0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60, 0x16AC0,
        0x16B50, 0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
    ];
    let u = c as u32;
    ND_ZEROS.iter().any(|&z| (z..z + 10).contains(&u))
}

/// Python's `s.strip()`.
fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_space)
}

/// `processPunctuation`: each listed character is deleted when it touches a space anywhere in the
/// original text (or the text has a digit-comma-digit), otherwise replaced by a space; then periods
/// not followed by a digit are deleted — at most 32 of them, because the original passes
/// `re.UNICODE` (= 32) where `re.sub` expects its `count`.
pub fn process_punctuation(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let comma_between_digits = chars
        .windows(3)
        .any(|w| is_py_digit(w[0]) && w[1] == ',' && is_py_digit(w[2]));
    let mut out = text.to_string();
    for p in PUNCT {
        let touches_space = chars
            .windows(2)
            .any(|w| (w[0] == p && w[1] == ' ') || (w[0] == ' ' && w[1] == p));
        let with = if touches_space || comma_between_digits {
            ""
        } else {
            " "
        };
        out = out.replace(p, with);
    }
    let chars: Vec<char> = out.chars().collect();
    let mut kept = String::with_capacity(out.len());
    let mut removed = 0;
    for (i, &c) in chars.iter().enumerate() {
        let next_is_digit = chars.get(i + 1).is_some_and(|&n| is_py_digit(n));
        if c == '.' && !next_is_digit && removed < 32 {
            removed += 1;
            continue;
        }
        kept.push(c);
    }
    kept
}

/// `processDigitArticle`: lower-case, split on whitespace, number words `none`/`zero`…`ten` to
/// digits, drop `a`/`an`/`the`, apostrophe-less contractions to their usual spelling.
pub fn process_digit_article(text: &str) -> String {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(is_py_space)
        .filter(|w| !w.is_empty())
        .map(|w| number_word(w).unwrap_or(w))
        .filter(|w| !matches!(*w, "a" | "an" | "the"))
        .map(|w| contraction(w).unwrap_or(w))
        .collect();
    words.join(" ")
}

fn number_word(w: &str) -> Option<&'static str> {
    Some(match w {
        "none" | "zero" => "0",
        "one" => "1",
        "two" => "2",
        "three" => "3",
        "four" => "4",
        "five" => "5",
        "six" => "6",
        "seven" => "7",
        "eight" => "8",
        "nine" => "9",
        "ten" => "10",
        _ => return None,
    })
}

/// The official contraction table. Its keys `Im`, `Ive`, `Id've`, `I'dve` are capitalised and so
/// never match lower-cased words; they are left out for that reason. `somebody'd` maps to
/// `somebodyd` in the original (a typo kept for equality).
fn contraction(w: &str) -> Option<&'static str> {
    Some(match w {
        "aint" => "ain't",
        "arent" => "aren't",
        "cant" => "can't",
        "couldve" => "could've",
        "couldnt" => "couldn't",
        "couldn'tve" | "couldnt've" => "couldn't've",
        "didnt" => "didn't",
        "doesnt" => "doesn't",
        "dont" => "don't",
        "hadnt" => "hadn't",
        "hadnt've" | "hadn'tve" => "hadn't've",
        "hasnt" => "hasn't",
        "havent" => "haven't",
        "hed" => "he'd",
        "hed've" | "he'dve" => "he'd've",
        "hes" => "he's",
        "howd" => "how'd",
        "howll" => "how'll",
        "hows" => "how's",
        "isnt" => "isn't",
        "itd" => "it'd",
        "itd've" | "it'dve" => "it'd've",
        "itll" => "it'll",
        "let's" => "let's",
        "maam" => "ma'am",
        "mightnt" => "mightn't",
        "mightnt've" | "mightn'tve" => "mightn't've",
        "mightve" => "might've",
        "mustnt" => "mustn't",
        "mustve" => "must've",
        "neednt" => "needn't",
        "notve" => "not've",
        "oclock" => "o'clock",
        "oughtnt" => "oughtn't",
        "ow's'at" | "'ows'at" | "'ow'sat" => "'ow's'at",
        "shant" => "shan't",
        "shed've" | "she'dve" => "she'd've",
        "she's" => "she's",
        "shouldve" => "should've",
        "shouldnt" => "shouldn't",
        "shouldnt've" | "shouldn'tve" => "shouldn't've",
        "somebody'd" => "somebodyd",
        "somebodyd've" | "somebody'dve" => "somebody'd've",
        "somebodyll" => "somebody'll",
        "somebodys" => "somebody's",
        "someoned" => "someone'd",
        "someoned've" | "someone'dve" => "someone'd've",
        "someonell" => "someone'll",
        "someones" => "someone's",
        "somethingd" => "something'd",
        "somethingd've" | "something'dve" => "something'd've",
        "somethingll" => "something'll",
        "thats" => "that's",
        "thered" => "there'd",
        "thered've" | "there'dve" => "there'd've",
        "therere" => "there're",
        "theres" => "there's",
        "theyd" => "they'd",
        "theyd've" | "they'dve" => "they'd've",
        "theyll" => "they'll",
        "theyre" => "they're",
        "theyve" => "they've",
        "twas" => "'twas",
        "wasnt" => "wasn't",
        "wed've" | "we'dve" => "we'd've",
        "weve" => "we've",
        "werent" => "weren't",
        "whatll" => "what'll",
        "whatre" => "what're",
        "whats" => "what's",
        "whatve" => "what've",
        "whens" => "when's",
        "whered" => "where'd",
        "wheres" => "where's",
        "whereve" => "where've",
        "whod" => "who'd",
        "whod've" | "who'dve" => "who'd've",
        "wholl" => "who'll",
        "whos" => "who's",
        "whove" => "who've",
        "whyll" => "why'll",
        "whyre" => "why're",
        "whys" => "why's",
        "wont" => "won't",
        "wouldve" => "would've",
        "wouldnt" => "wouldn't",
        "wouldnt've" | "wouldn'tve" => "wouldn't've",
        "yall" => "y'all",
        "yall'll" | "y'allll" => "y'all'll",
        "yall'd've" | "y'alld've" | "y'all'dve" => "y'all'd've",
        "youd" => "you'd",
        "youd've" | "you'dve" => "you'd've",
        "youll" => "you'll",
        "youre" => "you're",
        "youve" => "you've",
        _ => return None,
    })
}

/// `\n` and `\t` to spaces (both versions do this to the prediction; the official one also to the
/// answers).
fn flatten(s: &str) -> String {
    s.replace(['\n', '\t'], " ")
}

/// The accuracy of `prediction` for one question with human `answers` (in [0, 1]). Leave-one-out is
/// by position, as the original's dict comparison is when answers carry their unique `answer_id`.
pub fn question_accuracy(mode: VqaEvalMode, prediction: &str, answers: &[String]) -> f64 {
    if answers.is_empty() {
        return 0.0;
    }
    let (gts, pred): (Vec<String>, String) = match mode {
        VqaEvalMode::Official => {
            let gts: Vec<String> = answers
                .iter()
                .map(|a| py_strip(&flatten(a)).to_string())
                .collect();
            let pred = py_strip(&flatten(prediction)).to_string();
            let distinct: HashSet<&String> = gts.iter().collect();
            if distinct.len() > 1 {
                let norm = |s: &str| process_digit_article(&process_punctuation(s));
                (gts.iter().map(|a| norm(a)).collect(), norm(&pred))
            } else {
                (gts, pred)
            }
        }
        VqaEvalMode::Legacy => {
            let pred = process_digit_article(&process_punctuation(py_strip(&flatten(prediction))));
            let distinct: HashSet<&String> = answers.iter().collect();
            let gts = if distinct.len() > 1 {
                answers.iter().map(|a| process_punctuation(a)).collect()
            } else {
                answers.to_vec()
            };
            (gts, pred)
        }
    };
    let matching: Vec<bool> = gts.iter().map(|g| *g == pred).collect();
    let total: usize = matching.iter().filter(|m| **m).count();
    let sum: f64 = matching
        .iter()
        .map(|&m| {
            let others = total - usize::from(m);
            (others as f64 / 3.0).min(1.0)
        })
        .sum();
    sum / answers.len() as f64
}

/// Python's `round(x, 2)`: the binary value rounded exactly to two decimals, ties to even (Rust's
/// formatting does the same), read back as a float.
pub fn round2(x: f64) -> f64 {
    format!("{x:.2}").parse().unwrap_or(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// Hand-computed from the definition: k humans agree → leave-one-out mean of min(1, m/3).
    #[test]
    fn leave_one_out_scores_by_number_of_agreeing_humans() {
        let mut gt = vec!["no"; 10];
        for (k, want) in [(0, 0.0), (1, 0.3), (2, 0.6), (3, 0.9), (4, 1.0), (10, 1.0)] {
            for (i, a) in gt.iter_mut().enumerate() {
                *a = if i < k { "yes" } else { "no" };
            }
            let acc = question_accuracy(VqaEvalMode::Official, "yes", &answers(&gt));
            assert!((acc - want).abs() < 1e-12, "{k}: {acc}");
        }
    }

    #[test]
    fn normalisation_as_the_reference_doc_states() {
        assert_eq!(process_punctuation("t-shirt"), "t shirt");
        assert_eq!(process_punctuation("yes!"), "yes ");
        assert_eq!(process_punctuation("a , b"), "a  b");
        assert_eq!(process_punctuation("10,000-ish"), "10000ish");
        assert_eq!(process_punctuation("2.5 and 3."), "2.5 and 3");
        assert_eq!(process_punctuation("www.flickr.com"), "wwwflickrcom");
        assert_eq!(process_punctuation(&".".repeat(40)), ".".repeat(8));
        assert_eq!(process_digit_article("The Two dogs"), "2 dogs");
        assert_eq!(process_digit_article("dont  know"), "don't know");
        assert_eq!(process_digit_article("Im here"), "im here");
    }

    /// The two modes differ exactly where the reference doc says they do.
    #[test]
    fn official_and_legacy_differ_on_unanimous_answers() {
        let two = answers(&["2"; 10]);
        assert_eq!(question_accuracy(VqaEvalMode::Official, "two", &two), 0.0);
        assert_eq!(question_accuracy(VqaEvalMode::Legacy, "two", &two), 1.0);
        let shirt = answers(&["t-shirt"; 10]);
        assert_eq!(
            question_accuracy(VqaEvalMode::Official, "t-shirt", &shirt),
            1.0
        );
        assert_eq!(
            question_accuracy(VqaEvalMode::Legacy, "t-shirt", &shirt),
            0.0
        );
    }

    #[test]
    fn round2_is_pythons_round() {
        // values whose Python round(x, 2) was checked by hand: ties on exact binary values go to even
        assert_eq!(round2(0.125), 0.12);
        assert_eq!(round2(0.375), 0.38);
        assert_eq!(round2(2.675), 2.67); // 2.67499999… in binary
        assert_eq!(round2(100.0 / 3.0), 33.33);
    }
}
