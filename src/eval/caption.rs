//! Scoring a COCO caption results file: `mplug score caption`.
//!
//! As pycocoevalcap's `COCOEvalCap`: the images scored are those of the results file (each must be
//! in the annotations, as `COCO.loadRes` asserts), references are every annotation caption of the
//! image, both sides go through the PTB tokenisation, then BLEU-1..4, ROUGE-L and CIDEr-D (with
//! document frequencies over the scored images). METEOR runs its official jar when Java and the jar
//! are present; SPICE is not computed.

use std::collections::HashSet;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use super::bleu::bleu;
use super::cider_d::cider_d;
use super::ptb_tokenizer::tokenize_caption;
use super::results::{bad, id_list_preview, read_annotation_list, read_id_text_list};
use super::rouge_l::rouge_l;
use crate::error::{Error, Result};
use crate::sources::json::id_string;

/// Corpus scores, named as `COCOEvalCap.eval`, plus per-image values.
#[derive(Debug, Clone, Serialize)]
pub struct CaptionReport {
    /// Images scored.
    pub images: usize,
    /// Corpus metrics: `Bleu_1`..`Bleu_4`, `ROUGE_L`, `CIDEr`.
    pub metrics: indexmap::IndexMap<String, f64>,
    /// Per image (`image_id` → metric → value), in results order.
    pub per_image: indexmap::IndexMap<String, indexmap::IndexMap<String, f64>>,
    /// Metrics that were not computed, with the reason.
    pub skipped: indexmap::IndexMap<String, String>,
}

/// The tokenised captions that were scored (for inspecting a score).
#[derive(Debug, Clone, Serialize)]
pub struct TokenizedCaptions {
    /// `image_id` → tokenised references.
    pub references: indexmap::IndexMap<String, Vec<String>>,
    /// `image_id` → tokenised result caption.
    pub results: indexmap::IndexMap<String, String>,
}

/// `image_id` → reference captions, from a COCO captions file (`annotations[]` with `image_id` and
/// `caption`), in file order.
pub fn read_references(path: &Path) -> Result<indexmap::IndexMap<String, Vec<String>>> {
    let list = read_annotation_list(path, "COCO captions")?;
    let mut refs: indexmap::IndexMap<String, Vec<String>> = indexmap::IndexMap::new();
    for (i, a) in list.iter().enumerate() {
        let id = a
            .get("image_id")
            .and_then(id_string)
            .ok_or_else(|| bad(path, format!("annotations[{i}] has no integer `image_id`")))?;
        let caption = a
            .get("caption")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(path, format!("annotations[{i}] has no text `caption`")))?;
        refs.entry(id).or_default().push(caption.to_string());
    }
    Ok(refs)
}

/// `[{image_id, caption}]` in file order. One caption per image, as `COCOEvalCap` requires.
pub fn read_results(path: &Path) -> Result<Vec<(String, String)>> {
    let results = read_id_text_list(path, "image_id", "caption")?;
    let mut seen = HashSet::new();
    if let Some((id, _)) = results.iter().find(|(id, _)| !seen.insert(id.as_str())) {
        return Err(bad(path, format!("image {id} has more than one caption")));
    }
    Ok(results)
}

/// Tokenises and scores. Every result image must have references. `meteor_jar`: METEOR 1.5's jar
/// (pycocoevalcap ships it), run with Java.
/// Scores generated captions `(id, caption, references)`, in order; `None` when there are none or
/// some item has no reference (a split without captions: results only).
pub fn score_generated<'a>(
    items: impl Iterator<Item = (&'a str, &'a str, &'a [String])>,
    meteor_jar: Option<&Path>,
) -> Result<Option<CaptionReport>> {
    let mut refs = indexmap::IndexMap::new();
    let mut captioned = Vec::new();
    for (id, caption, references) in items {
        if references.is_empty() {
            return Ok(None);
        }
        refs.insert(id.to_string(), references.to_vec());
        captioned.push((id.to_string(), caption.to_string()));
    }
    if captioned.is_empty() {
        return Ok(None);
    }
    Ok(Some(score(&refs, &captioned, meteor_jar)?.0))
}

/// Scores `results` against `references` after PTB tokenisation.
pub fn score(
    references: &indexmap::IndexMap<String, Vec<String>>,
    results: &[(String, String)],
    meteor_jar: Option<&Path>,
) -> Result<(CaptionReport, TokenizedCaptions)> {
    let unknown: Vec<&str> = results
        .iter()
        .map(|(id, _)| id.as_str())
        .filter(|id| !references.contains_key(*id))
        .collect();
    if !unknown.is_empty() {
        return Err(Error::input_with_hint(
            format!(
                "the results caption {} image(s) that have no reference captions: {}",
                unknown.len(),
                id_list_preview(&unknown)
            ),
            "score against the annotations of the split the results were made for",
        ));
    }
    if results.is_empty() {
        return Err(Error::input("the results file holds no captions"));
    }
    let mut tokenized = TokenizedCaptions {
        references: indexmap::IndexMap::new(),
        results: indexmap::IndexMap::new(),
    };
    let pairs: Vec<(String, Vec<String>)> = results
        .iter()
        .map(|(id, caption)| {
            let refs: Vec<String> = references[id.as_str()]
                .iter()
                .map(|r| tokenize_caption(&r.replace('\n', " ")))
                .collect();
            let hyp = tokenize_caption(&caption.replace('\n', " "));
            tokenized.references.insert(id.clone(), refs.clone());
            tokenized.results.insert(id.clone(), hyp.clone());
            (hyp, refs)
        })
        .collect();
    let (bleu_corpus, bleu_per) = bleu(&pairs);
    let rouge_per: Vec<f64> = pairs.iter().map(|(h, r)| rouge_l(h, r)).collect();
    let (cider_corpus, cider_per) = cider_d(&pairs);
    let mut metrics = indexmap::IndexMap::new();
    for (k, v) in bleu_corpus.iter().enumerate() {
        metrics.insert(format!("Bleu_{}", k + 1), *v);
    }
    metrics.insert(
        "ROUGE_L".to_string(),
        rouge_per.iter().sum::<f64>() / rouge_per.len() as f64,
    );
    metrics.insert("CIDEr".to_string(), cider_corpus);
    let mut skipped = indexmap::IndexMap::new();
    let meteor = match meteor_jar {
        Some(jar) if jar.is_file() => Some(super::meteor::meteor(jar, &pairs)?),
        Some(jar) => {
            skipped.insert(
                "METEOR".to_string(),
                format!("no jar at `{}`", jar.display()),
            );
            None
        }
        None => {
            skipped.insert(
                "METEOR".to_string(),
                "needs Java and METEOR 1.5's jar (--meteor-jar)".to_string(),
            );
            None
        }
    };
    if let Some((corpus, _)) = &meteor {
        metrics.insert("METEOR".to_string(), *corpus);
    }
    skipped.insert("SPICE".to_string(), "not computed".to_string());
    let per_image = results
        .iter()
        .enumerate()
        .map(|(i, (id, _))| {
            let mut m = indexmap::IndexMap::new();
            for (k, v) in bleu_per[i].iter().enumerate() {
                m.insert(format!("Bleu_{}", k + 1), *v);
            }
            m.insert("ROUGE_L".to_string(), rouge_per[i]);
            m.insert("CIDEr".to_string(), cider_per[i]);
            if let Some((_, per)) = &meteor {
                m.insert("METEOR".to_string(), per[i]);
            }
            (id.clone(), m)
        })
        .collect();
    let report = CaptionReport {
        images: pairs.len(),
        metrics,
        per_image,
        skipped,
    };
    Ok((report, tokenized))
}

/// Images with references but no result caption (reported, not an error: the official code scores
/// the results' images).
pub fn unanswered(
    references: &indexmap::IndexMap<String, Vec<String>>,
    results: &[(String, String)],
) -> usize {
    let answered: HashSet<&str> = results.iter().map(|(id, _)| id.as_str()).collect();
    references
        .keys()
        .filter(|k| !answered.contains(k.as_str()))
        .count()
}
