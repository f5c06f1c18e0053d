//! Grounding accuracy of a results file `[{sent_id, bbox: [x, y, w, h]}]` (source pixels) against
//! RefCOCO annotations (refer's `refs(*).p` + `instances.json`, or TransVG `.pth` split files).
//!
//! A prediction is correct when its IoU with the annotated box is ≥ 0.5. The reference measures
//! IoU in its normalised padded frame; that frame is the source image scaled uniformly and shifted,
//! which leaves IoU unchanged, so scoring in source pixels gives the same numbers for the boxes
//! `mplug eval grounding` writes (already clamped to the padded canvas).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use super::results::{bad, id_list_preview, read_json};
use crate::error::{Error, Result};
use crate::sources::Source;
use crate::sources::refcoco::RefcocoSource;

/// IoU of two boxes given as corners `[x0, y0, x1, y1]` (TransVG's `bbox_iou`, without its +1).
pub fn box_iou(a: [f64; 4], b: [f64; 4]) -> f64 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let area = |x: [f64; 4]| (x[2] - x[0]) * (x[3] - x[1]);
    inter / (area(a) + area(b) - inter + 1e-16)
}

/// `[x, y, w, h]` → corners.
pub fn xywh_corners(b: [f64; 4]) -> [f64; 4] {
    [b[0], b[1], b[0] + b[2], b[1] + b[3]]
}

/// An annotated expression.
#[derive(Debug, Clone)]
pub struct GroundingReference {
    /// Its split.
    pub split: String,
    /// The referred box `[x, y, w, h]` in source pixels.
    pub bbox: [f64; 4],
}

/// Every expression of `files` (refs pickles with instances.json, or .pth split files) by sent_id.
pub fn read_references(files: &[PathBuf]) -> Result<BTreeMap<i64, GroundingReference>> {
    let source = RefcocoSource {
        annotation_files: files.to_vec(),
        image_root: PathBuf::new(),
        split_override: None,
    };
    let out = source.read()?;
    let mut refs = BTreeMap::new();
    for s in out.samples {
        for sent in &s.sentences {
            let bbox = s.objects[sent.object].bbox;
            refs.insert(
                sent.sent_id,
                GroundingReference {
                    split: s.split.clone(),
                    bbox,
                },
            );
        }
    }
    Ok(refs)
}

/// A results file: `[{sent_id, bbox}]` (`pred_box`, as `mplug eval grounding` writes, also read).
pub fn read_results(path: &Path) -> Result<Vec<(i64, [f64; 4])>> {
    let root = read_json(path)?;
    let list = root
        .as_array()
        .ok_or_else(|| bad(path, "expected a list of {sent_id, bbox: [x, y, w, h]}"))?;
    list.iter()
        .enumerate()
        .map(|(i, r)| {
            let id = r
                .get("sent_id")
                .and_then(Value::as_i64)
                .ok_or_else(|| bad(path, format!("[{i}] has no integer `sent_id`")))?;
            let b = r
                .get("bbox")
                .or_else(|| r.get("pred_box"))
                .and_then(Value::as_array)
                .filter(|b| b.len() == 4)
                .ok_or_else(|| bad(path, format!("[{i}] has no 4-number `bbox`")))?;
            let mut v = [0.0; 4];
            for (k, x) in b.iter().enumerate() {
                v[k] = x
                    .as_f64()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| bad(path, format!("[{i}] bbox[{k}] is not a finite number")))?;
            }
            Ok((id, v))
        })
        .collect()
}

/// Accuracy over the scored expressions.
#[derive(Debug, Clone, Serialize)]
pub struct GroundingReport {
    /// Percent with IoU ≥ 0.5.
    pub accuracy: f64,
    /// How many.
    pub correct: usize,
    /// Expressions scored.
    pub expressions: usize,
    /// Mean IoU.
    pub mean_iou: f64,
    /// Accuracy per split (percent).
    pub per_split: BTreeMap<String, f64>,
    /// Per expression, in results order: (sent_id, IoU).
    pub ious: Vec<(i64, f64)>,
}

/// Scores `results` against `refs`. Unknown or repeated sent_ids are refused; with `split`, every
/// expression of that split must be answered and no other.
pub fn score(
    refs: &BTreeMap<i64, GroundingReference>,
    results: &[(i64, [f64; 4])],
    split: Option<&str>,
) -> Result<GroundingReport> {
    let unknown: Vec<String> = results
        .iter()
        .filter(|(id, _)| match refs.get(id) {
            Some(r) => split.is_some_and(|s| r.split != s),
            None => true,
        })
        .map(|(id, _)| id.to_string())
        .collect();
    if !unknown.is_empty() {
        let names: Vec<&str> = unknown.iter().map(String::as_str).collect();
        return Err(Error::input(format!(
            "{} result(s) with sent_ids not annotated{}: {}",
            unknown.len(),
            split.map_or(String::new(), |s| format!(" in split `{s}`")),
            id_list_preview(&names)
        )));
    }
    let mut seen = HashMap::new();
    for (id, _) in results {
        if seen.insert(*id, ()).is_some() {
            return Err(Error::input(format!("sent_id {id} is answered twice")));
        }
    }
    if let Some(s) = split {
        let missing: Vec<String> = refs
            .iter()
            .filter(|(id, r)| r.split == s && !seen.contains_key(id))
            .map(|(id, _)| id.to_string())
            .collect();
        if !missing.is_empty() {
            let names: Vec<&str> = missing.iter().map(String::as_str).collect();
            return Err(Error::input(format!(
                "{} expression(s) of split `{s}` have no result: {}",
                missing.len(),
                id_list_preview(&names)
            )));
        }
    }
    let mut per_split: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut ious = Vec::with_capacity(results.len());
    for (id, pred) in results {
        let r = &refs[id];
        let iou = box_iou(xywh_corners(*pred), xywh_corners(r.bbox));
        let e = per_split.entry(r.split.clone()).or_default();
        e.0 += usize::from(iou >= 0.5);
        e.1 += 1;
        ious.push((*id, iou));
    }
    let correct = ious.iter().filter(|(_, v)| *v >= 0.5).count();
    let n = ious.len();
    Ok(GroundingReport {
        accuracy: 100.0 * correct as f64 / n.max(1) as f64,
        correct,
        expressions: n,
        mean_iou: ious.iter().map(|(_, v)| v).sum::<f64>() / n.max(1) as f64,
        per_split: per_split
            .into_iter()
            .map(|(s, (c, t))| (s, 100.0 * c as f64 / t.max(1) as f64))
            .collect(),
        ious,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs() -> BTreeMap<i64, GroundingReference> {
        let r = |split: &str, bbox| GroundingReference {
            split: split.into(),
            bbox,
        };
        BTreeMap::from([
            (1, r("val", [0.0, 0.0, 10.0, 10.0])),
            (2, r("val", [10.0, 10.0, 10.0, 10.0])),
            (3, r("testA", [0.0, 0.0, 4.0, 4.0])),
        ])
    }

    /// By hand: a box shifted by half its width has IoU 50/150 (wrong); one covering the
    /// annotation and half as much again has 100/150 (right).
    #[test]
    fn accuracy_by_hand() {
        let results = [(1, [5.0, 0.0, 10.0, 10.0]), (2, [10.0, 10.0, 15.0, 10.0])];
        let r = score(&refs(), &results, Some("val")).unwrap();
        assert_eq!((r.correct, r.expressions), (1, 2));
        assert!((r.ious[0].1 - 1.0 / 3.0).abs() < 1e-12);
        assert!((r.ious[1].1 - 2.0 / 3.0).abs() < 1e-12);
        assert!((r.accuracy - 50.0).abs() < 1e-12);
        // without --split: every split scored, each on its own (val 1 of 2, testA 1 of 1)
        let all = [
            (1, [5.0, 0.0, 10.0, 10.0]),
            (2, [10.0, 10.0, 15.0, 10.0]),
            (3, [0.0, 0.0, 4.0, 4.0]),
        ];
        let r = score(&refs(), &all, None).unwrap();
        assert_eq!((r.correct, r.expressions), (2, 3));
        assert_eq!(
            r.per_split,
            BTreeMap::from([("testA".to_string(), 100.0), ("val".to_string(), 50.0)])
        );
        let mean = (1.0 / 3.0 + 2.0 / 3.0 + 1.0) / 3.0;
        assert!((r.mean_iou - mean).abs() < 1e-12);
    }

    /// Unknown, repeated, other-split and missing ids are refused.
    #[test]
    fn wrong_ids_are_refused() {
        let b = [0.0, 0.0, 1.0, 1.0];
        assert!(score(&refs(), &[(9, b)], None).is_err());
        assert!(score(&refs(), &[(1, b), (1, b)], None).is_err());
        assert!(score(&refs(), &[(1, b), (2, b), (3, b)], Some("val")).is_err());
        assert!(score(&refs(), &[(1, b)], Some("val")).is_err());
        assert!(score(&refs(), &[(1, b)], None).is_ok());
    }
}
