//! Scoring a VQA results file against VQA v2 annotations: `mplug score vqa`.
//!
//! Inputs are the official formats: the annotations file (`v2_mscoco_val2014_annotations.json`, whose
//! `annotations[]` carry `question_id`, `question_type`, `answer_type` and ten `answers`) and an
//! EvalAI results file `[{"question_id": …, "answer": …}]`. As the official `VQA.loadRes`, the results
//! must answer exactly the annotated questions; unlike it, the error names the ids.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use super::results::{bad, id_list_preview, read_annotation_list, read_id_text_list};
use super::vqa_accuracy::{VqaEvalMode, question_accuracy, round2};
use crate::error::{Error, Result};
use crate::sources::json::id_string;

/// One annotated question.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct VqaGroundTruth {
    /// `question_id` (exact, as text).
    pub question_id: String,
    /// e.g. `what color is the`.
    pub question_type: String,
    /// `yes/no`, `number` or `other`.
    pub answer_type: String,
    /// The human answers (ten in VQA v2).
    pub answers: Vec<String>,
}

/// Accuracies in percent, rounded to two decimals as the official `accuracy` dict, plus the
/// unrounded overall value for comparisons finer than 0.01.
#[derive(Debug, Clone, Serialize)]
pub struct VqaReport {
    /// Which evaluation code this reproduces.
    pub mode: VqaEvalMode,
    /// Questions scored.
    pub questions: usize,
    /// `round(100 * mean, 2)`.
    pub overall: f64,
    /// `100 * mean`, not rounded.
    pub overall_exact: f64,
    /// Per `question_type`, in order of first appearance.
    #[serde(rename = "perQuestionType")]
    pub per_question_type: indexmap::IndexMap<String, f64>,
    /// Per `answer_type`, in order of first appearance.
    #[serde(rename = "perAnswerType")]
    pub per_answer_type: indexmap::IndexMap<String, f64>,
    /// Per question: `round(100 * acc, 2)`, keyed by question id.
    #[serde(rename = "evalQA")]
    pub per_question: indexmap::IndexMap<String, f64>,
}

/// Reads the `annotations` of a VQA v2 annotation file.
pub fn read_annotations(path: &Path) -> Result<Vec<VqaGroundTruth>> {
    let list = read_annotation_list(path, "VQA v2 annotations")?;
    list.iter()
        .enumerate()
        .map(|(i, a)| {
            let field = |k: &str| {
                a.get(k)
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| bad(path, format!("annotations[{i}] has no text `{k}`")))
            };
            let question_id = a.get("question_id").and_then(id_string).ok_or_else(|| {
                bad(
                    path,
                    format!("annotations[{i}] has no integer `question_id`"),
                )
            })?;
            let answers = a
                .get("answers")
                .and_then(Value::as_array)
                .ok_or_else(|| bad(path, format!("annotations[{i}] has no `answers` list")))?
                .iter()
                .map(|x| x.get("answer").and_then(Value::as_str).map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| bad(path, format!("annotations[{i}]: an answer without text")))?;
            Ok(VqaGroundTruth {
                question_id,
                question_type: field("question_type")?,
                answer_type: field("answer_type")?,
                answers,
            })
        })
        .collect()
}

/// Reads `[{question_id, answer}]`; a repeated id keeps its last answer (as the official loader's
/// dict does) and is reported by [`score`] only if it is unknown.
pub fn read_results(path: &Path) -> Result<Vec<(String, String)>> {
    read_id_text_list(path, "question_id", "answer")
}

/// Scores `results` against `truth`. The results must answer every annotated question and no other
/// (the official loader asserts the same).
pub fn score(
    truth: &[VqaGroundTruth],
    results: &[(String, String)],
    mode: VqaEvalMode,
) -> Result<VqaReport> {
    let predicted: HashMap<&str, &str> = results
        .iter()
        .map(|(q, a)| (q.as_str(), a.as_str()))
        .collect();
    let known: HashSet<&str> = truth.iter().map(|t| t.question_id.as_str()).collect();
    let unknown: Vec<&str> = results
        .iter()
        .map(|(q, _)| q.as_str())
        .filter(|q| !known.contains(q))
        .collect();
    if !unknown.is_empty() {
        return Err(Error::input_with_hint(
            format!(
                "the results answer {} question(s) that are not in the annotations: {}",
                unknown.len(),
                id_list_preview(&unknown)
            ),
            "score against the annotations of the split the results were made for",
        ));
    }
    let missing: Vec<&str> = truth
        .iter()
        .map(|t| t.question_id.as_str())
        .filter(|q| !predicted.contains_key(q))
        .collect();
    if !missing.is_empty() {
        return Err(Error::input_with_hint(
            format!(
                "the results have no answer for {} annotated question(s): {}",
                missing.len(),
                id_list_preview(&missing)
            ),
            "the official evaluation scores every question of the split; answer them all",
        ));
    }
    let mut all = Vec::with_capacity(truth.len());
    let mut by_qtype: indexmap::IndexMap<String, Vec<f64>> = indexmap::IndexMap::new();
    let mut by_atype: indexmap::IndexMap<String, Vec<f64>> = indexmap::IndexMap::new();
    let mut per_question = indexmap::IndexMap::new();
    for t in truth {
        let acc = question_accuracy(mode, predicted[t.question_id.as_str()], &t.answers);
        all.push(acc);
        by_qtype
            .entry(t.question_type.clone())
            .or_default()
            .push(acc);
        by_atype.entry(t.answer_type.clone()).or_default().push(acc);
        per_question.insert(t.question_id.clone(), round2(100.0 * acc));
    }
    // Python's `100 * float(sum(xs)) / len(xs)`: a left-to-right sum, then scale, then divide.
    let pct = |xs: &[f64]| 100.0 * xs.iter().sum::<f64>() / xs.len().max(1) as f64;
    Ok(VqaReport {
        mode,
        questions: truth.len(),
        overall: round2(pct(&all)),
        overall_exact: pct(&all),
        per_question_type: by_qtype
            .iter()
            .map(|(k, v)| (k.clone(), round2(pct(v))))
            .collect(),
        per_answer_type: by_atype
            .iter()
            .map(|(k, v)| (k.clone(), round2(pct(v))))
            .collect(),
        per_question,
    })
}
