//! VQA v2 and Visual Genome QA.
//!
//! Reads, detecting each file's kind from its content:
//! * official `v2_OpenEnded_mscoco_*_questions.json` (`{data_subtype, questions: [...]}`) and
//!   `v2_mscoco_*_annotations.json` (`{annotations: [{question_id, answers: [10 x {answer}], ...}]}`),
//!   joined by `question_id`; images `<subtype dir>/COCO_<subtype dir>_<id:012>.jpg` under `--images`
//!   (or directly under it when that folder does not exist);
//! * ALBEF/mPLUG lists `[{question_id, question, answer: [..] | str, image, dataset: vqa|vg}]`;
//!   `image` is relative to `--images` (vqa) or `--vg-images` (vg), as `vqa_root`/`vg_root`;
//! * Visual Genome `question_answers.json` (+ `image_data.json` for the paths), dataset `vg`.
//!
//! One sample per (dataset, split, image) with all its questions, in first-appearance order.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::coco::{file_label, read_annotation_file, split_from_file_name};
use super::image_root::check_relative_path;
use super::json::{id_string, parse_json, structure_error, type_name};
use super::vg::{VgFiles, record_image_id};
use super::{Source, SourceOutput};
use crate::error::Result;
use crate::shards::manifest::{RejectRecord, RejectStage, RejectUnit};

/// Image root index of COCO (VQA) images.
pub const COCO_ROOT: usize = 0;
/// Image root index of Visual Genome images.
pub const VG_ROOT: usize = 1;

/// One question with its raw human answers.
#[derive(Debug, Clone, PartialEq)]
pub struct QaItem {
    /// `question_id` / `qa_id`.
    pub question_id: String,
    /// Raw question.
    pub question: String,
    /// Raw human answers (10 in VQA v2 train/val, 1 for VG, none for test).
    pub answers: Vec<String>,
    /// VQA `question_type`, or empty.
    pub question_type: String,
    /// VQA `answer_type`, or empty.
    pub answer_type: String,
    /// VQA `multiple_choice_answer`, or empty.
    pub multiple_choice_answer: String,
}

/// An image with its questions.
#[derive(Debug, Clone, PartialEq)]
pub struct QaSample {
    /// Image id.
    pub image_id: String,
    /// Split.
    pub split: String,
    /// `vqa` or `vg`.
    pub dataset: String,
    /// [`COCO_ROOT`] or [`VG_ROOT`].
    pub root: usize,
    /// Path relative to that root.
    pub source_path: String,
    /// Questions in file order.
    pub questions: Vec<QaItem>,
}

/// Reads VQA v2 / VG QA annotation files.
#[derive(Debug, Clone)]
pub struct VqaSource {
    /// Annotation files.
    pub annotation_files: Vec<PathBuf>,
    /// COCO image root.
    pub coco_root: PathBuf,
    /// Visual Genome image root.
    pub vg_root: PathBuf,
    /// Forces every sample's split.
    pub split_override: Option<String>,
}

/// The split of an official `data_subtype`: `train2014` → `train`, `test-dev2015` → `test-dev`.
pub fn split_from_subtype(subtype: &str) -> String {
    let s = subtype.trim_end_matches(|c: char| c.is_ascii_digit());
    s.to_string()
}

/// The COCO id in a file name: `COCO_train2014_000000458752.jpg` → `458752`.
fn id_from_path(path: &str) -> String {
    let stem = path.rsplit('/').next().unwrap_or(path);
    let stem = stem.split('.').next().unwrap_or(stem);
    let digits: String = stem
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    match digits.trim_start_matches('0') {
        "" if digits.is_empty() => stem.to_string(),
        "" => "0".to_string(),
        d => d.to_string(),
    }
}

#[derive(Default)]
struct QaCollector {
    samples: Vec<QaSample>,
    index: HashMap<(String, String, String), usize>,
    seen_questions: HashSet<(String, String)>,
    rejects: Vec<RejectRecord>,
}

impl QaCollector {
    fn reject(&mut self, file: &str, id: String, unit: RejectUnit, reason: impl Into<String>) {
        self.rejects.push(RejectRecord {
            source: file.to_string(),
            sample_id: id,
            stage: RejectStage::Annotation,
            unit,
            reason: reason.into(),
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        file: &str,
        dataset: &str,
        root: usize,
        split: &str,
        raw_path: &str,
        image_id: String,
        item: QaItem,
    ) {
        let path = match check_relative_path(raw_path) {
            Ok(p) => p,
            Err(reason) => {
                self.rejects.push(RejectRecord {
                    source: file.to_string(),
                    sample_id: item.question_id,
                    stage: RejectStage::Path,
                    unit: RejectUnit::Question,
                    reason,
                });
                return;
            }
        };
        if item.question.trim().is_empty() {
            self.reject(
                file,
                item.question_id,
                RejectUnit::Question,
                "empty question",
            );
            return;
        }
        if !self
            .seen_questions
            .insert((dataset.to_string(), item.question_id.clone()))
        {
            let reason = format!("duplicate question id `{}`", item.question_id);
            self.reject(file, item.question_id, RejectUnit::Question, reason);
            return;
        }
        let key = (dataset.to_string(), split.to_string(), path.clone());
        let idx = *self.index.entry(key).or_insert_with(|| {
            self.samples.push(QaSample {
                image_id,
                split: split.to_string(),
                dataset: dataset.to_string(),
                root,
                source_path: path,
                questions: Vec::new(),
            });
            self.samples.len() - 1
        });
        self.samples[idx].questions.push(item);
    }
}

fn str_field(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

impl VqaSource {
    fn coco_path(&self, subtype: &str, image_id: &str) -> String {
        // test-dev questions use the test2015 images.
        let dir = if subtype.starts_with("test") {
            format!(
                "test{}",
                subtype.trim_start_matches(|c: char| !c.is_ascii_digit())
            )
        } else {
            subtype.to_string()
        };
        let num: u64 = image_id.parse().unwrap_or(0);
        let name = format!("COCO_{dir}_{num:012}.jpg");
        if self.coco_root.join(&dir).is_dir() {
            format!("{dir}/{name}")
        } else {
            name
        }
    }

    fn read_official(
        &self,
        path: &Path,
        v: &Value,
        answers: &HashMap<String, Value>,
        c: &mut QaCollector,
    ) -> Result<()> {
        let file = file_label(path);
        let subtype = str_field(v, "data_subtype");
        let split = self
            .split_override
            .clone()
            .unwrap_or_else(|| split_from_subtype(&subtype));
        let Some(questions) = v.get("questions").and_then(Value::as_array) else {
            return Err(structure_error(path, "$.questions", "expected a list"));
        };
        for (i, q) in questions.iter().enumerate() {
            let (Some(qid), Some(image_id)) = (
                q.get("question_id").and_then(id_string),
                q.get("image_id").and_then(id_string),
            ) else {
                c.reject(
                    &file,
                    format!("questions[{i}]"),
                    RejectUnit::Question,
                    "record needs `question_id` and `image_id`",
                );
                continue;
            };
            let Some(question) = q.get("question").and_then(Value::as_str) else {
                let reason = format!(
                    "question is {}, not a string",
                    type_name(q.get("question").unwrap_or(&Value::Null))
                );
                c.reject(&file, qid, RejectUnit::Question, reason);
                continue;
            };
            let ann = answers.get(&qid);
            if ann.is_none() && !split.starts_with("test") {
                c.reject(
                    &file,
                    qid,
                    RejectUnit::Question,
                    "no annotation with this question_id (pass the matching v2_mscoco_*_annotations.json)",
                );
                continue;
            }
            let human: Vec<String> = ann
                .and_then(|a| a.get("answers"))
                .and_then(Value::as_array)
                .map(|list| {
                    list.iter()
                        .filter_map(|a| a.get("answer").and_then(Value::as_str))
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            if ann.is_some() && human.is_empty() {
                c.reject(
                    &file,
                    qid,
                    RejectUnit::Question,
                    "annotation has no answers",
                );
                continue;
            }
            let rel = self.coco_path(&subtype, &image_id);
            let item = QaItem {
                question_id: qid,
                question: question.to_string(),
                answers: human,
                question_type: ann
                    .map(|a| str_field(a, "question_type"))
                    .unwrap_or_default(),
                answer_type: ann.map(|a| str_field(a, "answer_type")).unwrap_or_default(),
                multiple_choice_answer: ann
                    .map(|a| str_field(a, "multiple_choice_answer"))
                    .unwrap_or_default(),
            };
            c.add(&file, "vqa", COCO_ROOT, &split, &rel, image_id, item);
        }
        Ok(())
    }

    fn read_albef(&self, path: &Path, v: &Value, c: &mut QaCollector) {
        let file = file_label(path);
        let split = self
            .split_override
            .clone()
            .unwrap_or_else(|| split_from_file_name(path));
        for (i, r) in v
            .as_array()
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .enumerate()
        {
            let qid = r
                .get("question_id")
                .and_then(id_string)
                .unwrap_or_else(|| format!("{file}[{i}]"));
            let dataset = r.get("dataset").and_then(Value::as_str).unwrap_or("vqa");
            let root = match dataset {
                "vqa" => COCO_ROOT,
                "vg" => VG_ROOT,
                other => {
                    let reason =
                        format!("dataset `{other}` is not vqa or vg (no image root for it)");
                    c.reject(&file, qid, RejectUnit::Question, reason);
                    continue;
                }
            };
            let (Some(image), Some(question)) = (
                r.get("image").and_then(Value::as_str),
                r.get("question").and_then(Value::as_str),
            ) else {
                c.reject(
                    &file,
                    qid,
                    RejectUnit::Question,
                    "record needs string `image` and `question`",
                );
                continue;
            };
            let answers: Vec<String> = match r.get("answer") {
                Some(Value::String(a)) => vec![a.clone()],
                Some(Value::Array(list)) => list
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect(),
                None | Some(Value::Null) => Vec::new(),
                Some(other) => {
                    let reason = format!("answer is {}, not a string or list", type_name(other));
                    c.reject(&file, qid, RejectUnit::Question, reason);
                    continue;
                }
            };
            if answers.is_empty() && !split.starts_with("test") {
                c.reject(
                    &file,
                    qid,
                    RejectUnit::Question,
                    "training question without an answer",
                );
                continue;
            }
            let item = QaItem {
                question_id: qid,
                question: question.to_string(),
                answers,
                question_type: String::new(),
                answer_type: String::new(),
                multiple_choice_answer: String::new(),
            };
            c.add(
                &file,
                dataset,
                root,
                &split,
                image,
                id_from_path(image),
                item,
            );
        }
    }

    fn read_vg(&self, vg: &VgFiles, c: &mut QaCollector) {
        let split = self
            .split_override
            .clone()
            .unwrap_or_else(|| "train".to_string());
        for (path, v) in &vg.qas {
            let file = file_label(path);
            for (i, r) in v
                .as_array()
                .map_or(&[][..], Vec::as_slice)
                .iter()
                .enumerate()
            {
                let Some(image_id) = record_image_id(r, "qas") else {
                    c.reject(
                        &file,
                        format!("[{i}]"),
                        RejectUnit::Image,
                        "record has no image id",
                    );
                    continue;
                };
                let rel = vg.image_path(&self.vg_root, &image_id);
                for (k, qa) in r
                    .get("qas")
                    .and_then(Value::as_array)
                    .map_or(&[][..], Vec::as_slice)
                    .iter()
                    .enumerate()
                {
                    let qid = qa
                        .get("qa_id")
                        .and_then(id_string)
                        .unwrap_or_else(|| format!("{image_id}#{k}"));
                    let (Some(q), Some(a)) = (
                        qa.get("question").and_then(Value::as_str),
                        qa.get("answer").and_then(Value::as_str),
                    ) else {
                        c.reject(
                            &file,
                            qid,
                            RejectUnit::Question,
                            "qa needs string `question` and `answer`",
                        );
                        continue;
                    };
                    let item = QaItem {
                        question_id: qid,
                        question: q.to_string(),
                        answers: vec![a.to_string()],
                        question_type: String::new(),
                        answer_type: String::new(),
                        multiple_choice_answer: String::new(),
                    };
                    c.add(&file, "vg", VG_ROOT, &split, &rel, image_id.clone(), item);
                }
            }
        }
    }
}

impl Source for VqaSource {
    type Sample = QaSample;

    fn read(&self) -> Result<SourceOutput<QaSample>> {
        let mut files = Vec::new();
        let mut official_questions = Vec::new();
        let mut albef = Vec::new();
        let mut answers: HashMap<String, Value> = HashMap::new();
        let mut vg_paths = Vec::new();
        for path in &self.annotation_files {
            let bytes = read_annotation_file(path, &mut files)?;
            let v = parse_json(path, &bytes)?;
            let first = v.as_array().and_then(|a| a.first());
            if v.get("questions").is_some() {
                official_questions.push((path.clone(), v));
            } else if let Some(list) = v.get("annotations").and_then(Value::as_array) {
                for a in list {
                    if let Some(qid) = a.get("question_id").and_then(id_string) {
                        answers.insert(qid, a.clone());
                    }
                }
            } else if first.is_some_and(|r| r.get("qas").is_some() || r.get("url").is_some()) {
                vg_paths.push(path.clone());
            } else if first.is_some_and(|r| r.get("question").is_some())
                || v.as_array().is_some_and(Vec::is_empty)
            {
                albef.push((path.clone(), v));
            } else {
                return Err(structure_error(
                    path,
                    "$",
                    "not a VQA file: expected official questions/annotations, an ALBEF/mPLUG list of \
                     {question, answer, image, dataset} or Visual Genome question_answers/image_data",
                ));
            }
        }
        let mut c = QaCollector::default();
        for (path, v) in &official_questions {
            self.read_official(path, v, &answers, &mut c)?;
        }
        for (path, v) in &albef {
            self.read_albef(path, v, &mut c);
        }
        if !vg_paths.is_empty() {
            // Re-read through the VG reader (cheap next to pixels; keeps one parser per format).
            let mut vg = super::vg::read_vg_files(&vg_paths)?;
            vg.files.clear();
            self.read_vg(&vg, &mut c);
        }
        Ok(SourceOutput {
            samples: c.samples,
            rejects: c.rejects,
            files,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_splits_from_names() {
        assert_eq!(
            id_from_path("train2014/COCO_train2014_000000458752.jpg"),
            "458752"
        );
        assert_eq!(id_from_path("VG_100K/2377379.jpg"), "2377379");
        assert_eq!(id_from_path("x/COCO_val2014_000000000000.jpg"), "0");
        assert_eq!(id_from_path("a/photo.jpg"), "photo");
        assert_eq!(split_from_subtype("train2014"), "train");
        assert_eq!(split_from_subtype("test-dev2015"), "test-dev");
    }
}
