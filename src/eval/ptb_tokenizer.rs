//! The caption tokenisation of the COCO caption evaluation (pycocoevalcap `PTBTokenizer`): Stanford
//! CoreNLP 3.4.1's `PTBTokenizer -preserveLines -lowerCase`, then every token that is exactly one of
//! 17 punctuation strings dropped.
//!
//! Written by hand because the reference is a Java lexer: this reproduces its behaviour on caption
//! text — words, clitics (`'s`, `n't`, `'re`…), possessive apostrophes, quotes (removed), brackets
//! (kept as `-lrb-`… because the removal list is upper case), numbers with `.`/`,`/`:`/`/` inside,
//! hyphenated words, acronyms and the usual abbreviations keeping their period, currency and percent
//! split off, dashes, ellipses, `!!!`/`??` runs, curly quotes, and per-character lower-casing (Java's,
//! which has no final-sigma rule). `tests/it/eval.rs` compares it token for token with the Java
//! original on a corpus of such cases. Rarer constructs of the full lexer (URLs, e-mail addresses,
//! SGML tags, emoticons beyond `:)`) are not reproduced.

/// Tokens the caption evaluation drops after tokenising (pycocoevalcap's `PUNCTUATIONS`).
const DROPPED: [&str; 17] = [
    "''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--",
    "...", ";",
];

/// Abbreviations that keep their period (a subset of the lexer's list: titles, months, days, US
/// states, business words; each checked against the Java original). `fig`, `vol`, `pp`, `oz`, `lb`,
/// `sat` and `sun` are not among them there either.
const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "ft", "jan", "feb", "mar", "apr",
    "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "mon", "tue", "tues", "wed", "thu",
    "thurs", "fri", "inc", "ltd", "co", "corp", "vs", "etc", "al", "cf", "est", "dept", "univ",
    "bros", "assn", "gen", "gov", "rep", "sen", "rev", "pres", "capt", "col", "lt", "lieut", "sgt",
    "supt", "adm", "brig", "cmdr", "hon", "maj", "mme", "mlle", "messrs", "esq", "ave", "blvd",
    "rd", "sq", "ste", "ph.d",
];

/// More abbreviations: US states the lexer knows.
const STATES: &[&str] = &[
    "ala", "ariz", "calif", "colo", "conn", "fla", "ga", "ind", "kan", "ky", "md", "mich", "minn",
    "mo", "mont", "neb", "nev", "okla", "tenn", "va", "vt", "wis", "wyo",
];

/// Abbreviations that keep their period only before a number (`no. 5`, `fig.3`, `pp. 12`).
const BEFORE_NUMBERS: &[&str] = &["no", "nos", "fig", "figs", "pp", "art", "op", "tel"];

/// Words the lexer splits in two.
fn split_word(lower: &str) -> Option<(usize, usize)> {
    // (length of the first part, total length)
    match lower {
        "gonna" | "gotta" | "wanna" | "lemme" | "gimme" => Some((3, 5)),
        "cannot" => Some((3, 6)),
        _ => None,
    }
}

/// Tokenises one caption and drops the punctuation tokens, as pycocoevalcap does; tokens are joined
/// with single spaces.
pub fn tokenize_caption(text: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut gap = String::new();
    while i < chars.len() {
        if is_space(chars[i]) {
            gap.push(chars[i]);
            i += 1;
            continue;
        }
        let end = chars[i..]
            .iter()
            .position(|&c| is_space(c))
            .map_or(chars.len(), |n| i + n);
        let chunk = &chars[i..end];
        // "4 1/2": a whole number, one space, a fraction is one token (the space becomes U+00A0)
        let mut from = 0;
        if (gap == " " || gap == "\u{a0}")
            && out
                .last()
                .is_some_and(|t| t.chars().all(|c| c.is_ascii_digit()))
            && let Some(n) = fraction_len(chunk)
        {
            let whole = out.pop().unwrap_or_default();
            out.push(format!(
                "{whole}\u{a0}{}",
                chunk[..n].iter().collect::<String>()
            ));
            from = n;
        }
        // "no." keeps its period before a number, also across a space
        let next_digit = chars[end..]
            .iter()
            .find(|c| !is_space(**c))
            .is_some_and(|c| c.is_ascii_digit());
        lex_chunk(&chunk[from..], next_digit, &mut out);
        gap.clear();
        i = end;
    }
    // Lower-cased before the removal, as the Java side lower-cases: so `-LRB-` becomes `-lrb-` and
    // survives the (upper-case) removal list, the reference's quirk.
    out.iter()
        .map(|t| t.to_lowercase())
        .filter(|t| !DROPPED.contains(&t.as_str()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Length of a leading `digits/digits` that a digit does not continue.
fn fraction_len(c: &[char]) -> Option<usize> {
    let a = c.iter().take_while(|x| x.is_ascii_digit()).count();
    if a == 0 || c.get(a) != Some(&'/') {
        return None;
    }
    let b = c[a + 1..].iter().take_while(|x| x.is_ascii_digit()).count();
    (b > 0).then_some(a + 1 + b)
}

fn is_space(c: char) -> bool {
    c.is_whitespace() || c == '\u{a0}'
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || is_combining_mark(c)
}

/// Combining marks (decomposed accents) belong to the letter before them.
fn is_combining_mark(c: char) -> bool {
    matches!(c as u32, 0x300..=0x36F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF | 0xFE20..=0xFE2F)
}

fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '\u{2019}' | '\u{2018}')
}

fn bracket(c: char) -> Option<&'static str> {
    Some(match c {
        '(' => "-LRB-",
        ')' => "-RRB-",
        '[' => "-LSB-",
        ']' => "-RSB-",
        '{' => "-LCB-",
        '}' => "-RCB-",
        _ => return None,
    })
}

/// Lexes one whitespace-free chunk; `next_digit`: the next chunk starts with a digit.
fn lex_chunk(c: &[char], next_digit: bool, out: &mut Vec<String>) {
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if let Some(b) = bracket(ch) {
            out.push(b.to_string());
            i += 1;
        } else if matches!(
            ch,
            '"' | '\u{201c}' | '\u{201d}' | '\u{ab}' | '\u{bb}' | '\u{201e}'
        ) {
            out.push("''".to_string()); // quotes: dropped either way
            i += 1;
        } else if ch == '`' {
            out.push("`".to_string());
            i += 1;
        } else if is_apostrophe(ch) {
            i = lex_apostrophe(c, i, out);
        } else if matches!(ch, ':' | ';') && i + 1 < c.len() && matches!(c[i + 1], ')' | '(') {
            // :) ;( — an emoticon, its bracket escaped inside the token
            let b = bracket(c[i + 1]).unwrap_or("");
            out.push(format!("{ch}{b}"));
            i += 2;
        } else if matches!(ch, ',' | ';' | ':') {
            out.push(ch.to_string());
            i += 1;
        } else if ch == '.' || ch == '\u{2026}' {
            let n = c[i..].iter().take_while(|&&x| x == '.').count();
            out.push(
                if n >= 2 || ch == '\u{2026}' {
                    "..."
                } else {
                    "."
                }
                .to_string(),
            );
            i += n.max(1);
        } else if ch == '?' || ch == '!' {
            let n = c[i..].iter().take_while(|&&x| x == '?' || x == '!').count();
            out.push(c[i..i + n].iter().collect());
            i += n;
        } else if ch == '-' || ch == '+' {
            let n = c[i..].iter().take_while(|&&x| x == '-').count();
            if c.get(i + n.max(1)).is_some_and(|d| d.is_ascii_digit()) && n <= 1 {
                i = lex_word(c, i, next_digit, out); // -5, +3: a signed number
            } else if ch == '+' {
                out.push("+".to_string());
                i += 1;
            } else {
                out.push(if n >= 2 { "--" } else { "-" }.to_string());
                i += n;
            }
        } else if ch == '\u{2013}' || ch == '\u{2014}' {
            out.push("--".to_string());
            i += 1;
        } else if let Some(sym) = currency(ch) {
            out.push(sym.to_string());
            i += 1;
        } else if is_word_char(ch) {
            i = lex_word(c, i, next_digit, out);
        } else {
            out.push(ch.to_string());
            i += 1;
        }
    }
}

fn currency(c: char) -> Option<&'static str> {
    Some(match c {
        '$' | '\u{20ac}' | '\u{a5}' => "$",
        '\u{a3}' | '#' => "#",
        '\u{a2}' => "cents",
        '%' => "%",
        '&' => "&",
        _ => return None,
    })
}

/// An apostrophe at `i` that does not belong to a word before it: a word that starts with one
/// (`'n'`, `'90s`, `'em`), or a quote.
fn lex_apostrophe(c: &[char], i: usize, out: &mut Vec<String>) -> usize {
    let rest: String = c[i + 1..].iter().collect::<String>().to_lowercase();
    let starts = |p: &str| {
        rest.starts_with(p)
            && rest[p.len()..]
                .chars()
                .next()
                .is_none_or(|n| !is_word_char(n))
    };
    for word in ["n'", "em", "tis", "twas", "til", "cause"] {
        if starts(word) {
            let len = 1 + word.chars().count();
            out.push(
                c[i..i + len]
                    .iter()
                    .collect::<String>()
                    .replace('\u{2019}', "'"),
            );
            return i + len;
        }
    }
    // '90s
    let digits: Vec<char> = c[i + 1..].iter().take(3).copied().collect();
    if digits.len() == 3 && digits[0].is_ascii_digit() && digits[1] == '0' && digits[2] == 's' {
        out.push(c[i..i + 4].iter().collect());
        return i + 4;
    }
    out.push("'".to_string());
    i + 1
}

/// A word or number starting at `i`; also splits clitics, `n't` and a sentence period.
fn lex_word(c: &[char], start: usize, next_digit: bool, out: &mut Vec<String>) -> usize {
    let mut j = start;
    if matches!(c[j], '-' | '+') {
        j += 1;
    }
    while j < c.len() {
        let ch = c[j];
        let next = c.get(j + 1).copied();
        let prev = if j > start { Some(c[j - 1]) } else { None };
        if is_word_char(ch) {
            // n't: stop before the n
            if ch.eq_ignore_ascii_case(&'n')
                && next.is_some_and(is_apostrophe)
                && c.get(j + 2).is_some_and(|t| t.eq_ignore_ascii_case(&'t'))
                && c.get(j + 3).is_none_or(|x| !is_word_char(*x))
                && j > start
            {
                break;
            }
            j += 1;
            continue;
        }
        let joins = match ch {
            '-' | '.' | '/' | '&' | '_' => {
                prev.is_some_and(is_word_char) && next.is_some_and(is_word_char)
            }
            ':' => {
                prev.is_some_and(|p| p.is_ascii_digit()) && next.is_some_and(|n| n.is_ascii_digit())
            }
            ',' => {
                prev.is_some_and(|p| p.is_ascii_digit())
                    && c.get(j + 1..j + 4)
                        .is_some_and(|d| d.iter().all(char::is_ascii_digit))
                    && c.get(j + 4).is_none_or(|x| !x.is_ascii_digit())
            }
            _ => false,
        };
        let no_before_number = ch == '.'
            && next.is_some_and(|n| n.is_ascii_digit())
            && c[start..j]
                .iter()
                .collect::<String>()
                .eq_ignore_ascii_case("no");
        if no_before_number {
            break; // "no.7" is "no." and "7"
        }
        if joins && ch == '.' {
            // internal period: keep it (u.s, mouse.a, 3.5); a period is never last here
            j += 1;
            continue;
        }
        if !joins {
            break;
        }
        j += 1;
    }
    let word: String = c[start..j].iter().collect();
    let lower = word.to_lowercase();
    // o'clock, ma'am: one word
    for special in ["o", "ma"] {
        if lower == special && c.get(j).copied().is_some_and(is_apostrophe) {
            let tail: String = c[j + 1..]
                .iter()
                .take_while(|x| is_word_char(**x))
                .collect();
            let joined = format!("{lower}'{}", tail.to_lowercase());
            if joined == "o'clock" || joined == "ma'am" {
                out.push(format!("{word}'{tail}"));
                return j + 1 + tail.chars().count();
            }
        }
    }
    if let Some((first, total)) = split_word(&lower)
        && c.get(j).is_none_or(|x| !is_word_char(*x))
        && word.chars().count() == total
    {
        let chars: Vec<char> = word.chars().collect();
        out.push(chars[..first].iter().collect());
        out.push(chars[first..].iter().collect());
        return j;
    }
    // n't
    if c.get(j)
        .copied()
        .is_some_and(|x| x.eq_ignore_ascii_case(&'n'))
        && c.get(j + 1).copied().is_some_and(is_apostrophe)
        && c.get(j + 2).is_some_and(|t| t.eq_ignore_ascii_case(&'t'))
    {
        out.push(word);
        out.push(format!("{}'{}", c[j], c[j + 2]));
        return j + 3;
    }
    // clitics: 's 're 've 'll 'd 'm
    if c.get(j).copied().is_some_and(is_apostrophe) {
        let tail: String = c[j + 1..]
            .iter()
            .take_while(|x| x.is_alphabetic())
            .collect();
        let end = j + 1 + tail.chars().count();
        if matches!(
            tail.to_lowercase().as_str(),
            "s" | "re" | "ve" | "ll" | "d" | "m"
        ) && c.get(end).is_none_or(|x| !is_word_char(*x))
        {
            out.push(word);
            out.push(format!("'{tail}"));
            return end;
        }
    }
    // a period right after the word: kept by abbreviations and acronyms, split otherwise
    if c.get(j) == Some(&'.') {
        let acronym = lower
            .split('.')
            .all(|p| p.chars().count() == 1 && p.chars().all(char::is_alphabetic));
        let number_follows = c.get(j + 1).map_or(next_digit, char::is_ascii_digit);
        if acronym
            || ABBREVIATIONS.contains(&lower.as_str())
            || STATES.contains(&lower.as_str())
            || (BEFORE_NUMBERS.contains(&lower.as_str()) && number_follows)
        {
            out.push(format!("{word}."));
            return j + 1;
        }
    }
    out.push(word);
    j
}

#[cfg(test)]
mod tests {
    use super::tokenize_caption as t;

    /// Outputs of the Java original (pycocoevalcap 1.2, CoreNLP 3.4.1), recorded by hand.
    #[test]
    fn matches_recorded_java_outputs() {
        assert_eq!(
            t("A man riding a wave on top of a surfboard."),
            "a man riding a wave on top of a surfboard"
        );
        assert_eq!(
            t("A cat (very fluffy) sits."),
            "a cat -lrb- very fluffy -rrb- sits"
        );
        assert_eq!(
            t("The man's dog isn't here; can't, won't"),
            "the man 's dog is n't here ca n't wo n't"
        );
        assert_eq!(t("gonna cannot"), "gon na can not");
        assert_eq!(
            t("Mr. Smith at 3 p.m. in the U.S."),
            "mr. smith at 3 p.m. in the u.s."
        );
        assert_eq!(t("$5, 50%"), "$ 5 50 %");
        assert_eq!(
            t("Wait -- what ... no!!! why?? ok!"),
            "wait what no !!! why ?? ok"
        );
        assert_eq!(t("ΟΔΟΣ"), "οδος");
        assert_eq!(t("about 4 1/2 cups, 4  1/2"), "about 4\u{a0}1/2 cups 4 1/2");
        assert_eq!(t("e.g... dog..."), "e.g. dog");
        assert_eq!(t("No. 5 is no.7, not no."), "no. 5 is no. 7 not no");
        assert_eq!(
            t("fig. 3 of Ph.D. thesis, Calif. Sat. fig."),
            "fig. 3 of ph.d. thesis calif. sat fig"
        );
        assert_eq!(t("...!"), "");
        assert_eq!(t(""), "");
    }
}
