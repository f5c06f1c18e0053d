//! Pair classification: NLVR2 (two images, a sentence, True/False) and SNLI-VE (an image, a
//! hypothesis, entailment/neutral/contradiction).
//!
//! * NLVR2 `train.json`/`dev.json`/`test1.json` (JSON lines): the pair is the `identifier` without
//!   its last field; images `<split>/<pair>-img0.png` and `-img1.png` (train: under
//!   `train/<directory>/`), relative to `--images`.
//! * SNLI-VE `snli_ve_{train,dev,test}.jsonl`: image `<Flickr30K_ID>.jpg`; `gold_label` `-` (no
//!   consensus) is rejected, as the SNLI-VE generator drops it.
//! * The ALBEF/mPLUG lists: NLVR2 `[{images: [a, b], sentence, label}]`, SNLI-VE
//!   `[{image, sentence, label}]`; split from the file name.
//!
//! Labels are the reference's ids: NLVR2 True=1, False=0; SNLI-VE entailment=2, neutral=1,
//! contradiction=0. One sample per (split, image set) with all its statements.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::coco::{file_label, read_annotation_file, split_from_file_name};
use super::image_root::check_relative_path;
use super::json::{parse_json, structure_error};
use super::{Source, SourceOutput};
use crate::error::{Error, Result};
use crate::shards::manifest::{RejectRecord, RejectStage, RejectUnit};

/// Which dataset a statement source reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementDataset {
    /// NLVR2.
    Nlvr2,
    /// SNLI-VE.
    SnliVe,
}

impl StatementDataset {
    /// `nlvr2` | `snli-ve`.
    pub fn name(self) -> &'static str {
        match self {
            StatementDataset::Nlvr2 => "nlvr2",
            StatementDataset::SnliVe => "snli-ve",
        }
    }
}

/// One statement about an image set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// identifier / pairID.
    pub id: String,
    /// The statement.
    pub text: String,
    /// Label id.
    pub label: i32,
    /// SNLI-VE premise (else empty).
    pub premise: String,
}

/// An image set with its statements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementSample {
    /// Pair id or image id.
    pub sample_id: String,
    /// Split.
    pub split: String,
    /// The dataset.
    pub dataset: StatementDataset,
    /// One or two image paths under `--images`.
    pub images: Vec<String>,
    /// Statements in file order.
    pub statements: Vec<Statement>,
}

/// Reads NLVR2 or SNLI-VE files.
#[derive(Debug, Clone)]
pub struct StatementSource {
    /// Which dataset.
    pub dataset: StatementDataset,
    /// Annotation files.
    pub annotation_files: Vec<PathBuf>,
    /// Forces every sample's split.
    pub split_override: Option<String>,
}

/// NLVR2 `True`/`False` → 1/0.
pub fn nlvr2_label(v: &Value) -> Option<i32> {
    match v.as_str()? {
        "True" | "true" => Some(1),
        "False" | "false" => Some(0),
        _ => None,
    }
}

/// SNLI-VE label → 2/1/0.
pub fn snli_label(v: &Value) -> Option<i32> {
    match v.as_str()? {
        "entailment" => Some(2),
        "neutral" => Some(1),
        "contradiction" => Some(0),
        _ => None,
    }
}

#[derive(Default)]
struct Collector {
    samples: Vec<StatementSample>,
    index: HashMap<(String, Vec<String>), usize>,
    rejects: Vec<RejectRecord>,
}

impl Collector {
    fn reject(&mut self, file: &str, id: String, stage: RejectStage, reason: impl Into<String>) {
        self.rejects.push(RejectRecord {
            source: file.to_string(),
            sample_id: id,
            stage,
            unit: RejectUnit::Statement,
            reason: reason.into(),
        });
    }

    fn add(
        &mut self,
        file: &str,
        dataset: StatementDataset,
        split: &str,
        sample_id: String,
        raw_images: &[String],
        st: Statement,
    ) {
        let mut images = Vec::new();
        for raw in raw_images {
            match check_relative_path(raw) {
                Ok(p) => images.push(p),
                Err(reason) => return self.reject(file, st.id, RejectStage::Path, reason),
            }
        }
        if st.text.trim().is_empty() {
            return self.reject(file, st.id, RejectStage::Annotation, "empty statement");
        }
        let key = (split.to_string(), images.clone());
        let idx = *self.index.entry(key).or_insert_with(|| {
            self.samples.push(StatementSample {
                sample_id,
                split: split.to_string(),
                dataset,
                images,
                statements: Vec::new(),
            });
            self.samples.len() - 1
        });
        self.samples[idx].statements.push(st);
    }
}

/// Records of a file: a JSON list, or JSON lines.
fn records(path: &Path, bytes: &[u8]) -> Result<(Vec<Value>, bool)> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        let v = parse_json(path, bytes)?;
        return Ok((v.as_array().cloned().unwrap_or_default(), true));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| Error::Annotation {
        path: path.to_path_buf(),
        position: format!("byte {}", e.valid_up_to()),
        message: "not UTF-8 text".into(),
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = super::json::parse_json_line(path, i + 1, line)?;
        out.push(v);
    }
    Ok((out, false))
}

fn s(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_string)
}

impl StatementSource {
    fn nlvr2(&self, file: &str, path: &Path, recs: &[Value], albef: bool, c: &mut Collector) {
        let file_split = split_from_file_name(path);
        for (i, r) in recs.iter().enumerate() {
            let label = r.get("label").and_then(nlvr2_label);
            let sentence = s(r, "sentence");
            let (images, id, split, pair) = if albef {
                let imgs: Vec<String> = r
                    .get("images")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                let pair = imgs
                    .first()
                    .map(|p| {
                        p.rsplit('/')
                            .next()
                            .unwrap_or(p)
                            .trim_end_matches(".png")
                            .trim_end_matches("-img0")
                            .to_string()
                    })
                    .unwrap_or_default();
                let split = self
                    .split_override
                    .clone()
                    .unwrap_or_else(|| file_split.clone());
                (imgs, format!("{file}[{i}]"), split, pair)
            } else {
                let Some(id) = s(r, "identifier") else {
                    c.reject(
                        file,
                        format!("line {}", i + 1),
                        RejectStage::Annotation,
                        "record has no `identifier`",
                    );
                    continue;
                };
                let pair = id
                    .rsplit_once('-')
                    .map_or(id.as_str(), |(p, _)| p)
                    .to_string();
                let split = id.split('-').next().unwrap_or("train").to_string();
                let dir = match (
                    split.as_str(),
                    s(r, "directory").or_else(|| {
                        r.get("directory")
                            .and_then(Value::as_i64)
                            .map(|d| d.to_string())
                    }),
                ) {
                    ("train", Some(d)) => format!("train/{d}"),
                    _ => split.clone(),
                };
                let imgs = vec![
                    format!("{dir}/{pair}-img0.png"),
                    format!("{dir}/{pair}-img1.png"),
                ];
                (imgs, id, self.split_override.clone().unwrap_or(split), pair)
            };
            if images.len() != 2 {
                c.reject(
                    file,
                    id,
                    RejectStage::Annotation,
                    format!("expected two images, found {}", images.len()),
                );
                continue;
            }
            let Some(label) = label else {
                c.reject(
                    file,
                    id,
                    RejectStage::Annotation,
                    "label is not \"True\" or \"False\"",
                );
                continue;
            };
            let Some(text) = sentence else {
                c.reject(
                    file,
                    id,
                    RejectStage::Annotation,
                    "record has no string `sentence`",
                );
                continue;
            };
            let st = Statement {
                id,
                text,
                label,
                premise: String::new(),
            };
            c.add(file, StatementDataset::Nlvr2, &split, pair, &images, st);
        }
    }

    fn snli(&self, file: &str, path: &Path, recs: &[Value], albef: bool, c: &mut Collector) {
        let split = self
            .split_override
            .clone()
            .unwrap_or_else(|| split_from_file_name(path));
        // snli_ve_dev.jsonl → "dev" (split_from_file_name knows train/val/test only).
        let split = if self.split_override.is_none() && file.contains("dev") {
            "dev".to_string()
        } else {
            split
        };
        for (i, r) in recs.iter().enumerate() {
            let (image, text, label_v, id, premise) = if albef {
                (
                    s(r, "image"),
                    s(r, "sentence"),
                    r.get("label"),
                    format!("{file}[{i}]"),
                    String::new(),
                )
            } else {
                let image = s(r, "Flickr30K_ID").or_else(|| {
                    r.get("Flickr30K_ID")
                        .and_then(Value::as_i64)
                        .map(|x| x.to_string())
                });
                (
                    image,
                    s(r, "sentence2"),
                    r.get("gold_label"),
                    s(r, "pairID").unwrap_or_else(|| format!("line {}", i + 1)),
                    s(r, "sentence1").unwrap_or_default(),
                )
            };
            let Some(label) = label_v.and_then(snli_label) else {
                let shown = label_v.map_or("missing".to_string(), |v| v.to_string());
                c.reject(
                    file,
                    id,
                    RejectStage::Annotation,
                    format!("label {shown} is not entailment/neutral/contradiction"),
                );
                continue;
            };
            let (Some(image), Some(text)) = (image, text) else {
                c.reject(
                    file,
                    id,
                    RejectStage::Annotation,
                    "record needs an image id and a hypothesis",
                );
                continue;
            };
            let file_name = if image.ends_with(".jpg") {
                image
            } else {
                format!("{image}.jpg")
            };
            let sample_id = file_name.trim_end_matches(".jpg").to_string();
            let st = Statement {
                id,
                text,
                label,
                premise,
            };
            c.add(
                file,
                StatementDataset::SnliVe,
                &split,
                sample_id,
                &[file_name],
                st,
            );
        }
    }
}

impl Source for StatementSource {
    type Sample = StatementSample;

    fn read(&self) -> Result<SourceOutput<StatementSample>> {
        let mut files = Vec::new();
        let mut c = Collector::default();
        for path in &self.annotation_files {
            let bytes = read_annotation_file(path, &mut files)?;
            let (recs, albef) = records(path, &bytes)?;
            if recs.first().is_some_and(|r| !r.is_object()) {
                return Err(structure_error(path, "$[0]", "expected JSON objects"));
            }
            let file = file_label(path);
            match self.dataset {
                StatementDataset::Nlvr2 => self.nlvr2(&file, path, &recs, albef, &mut c),
                StatementDataset::SnliVe => self.snli(&file, path, &recs, albef, &mut c),
            }
        }
        Ok(SourceOutput {
            samples: c.samples,
            rejects: c.rejects,
            files,
        })
    }
}
