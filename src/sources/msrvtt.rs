//! MSRVTT annotation formats (shared/docs/eval-and-data.md §B):
//! - `train_val_videodatainfo.json` / `test_videodatainfo.json`: `{videos: [{video_id, split}],
//!   sentences: [{video_id, caption}]}`, split per video (`validate` → `val`);
//! - `MSRVTT_JSFUSION_test.csv` (1k-A test): `key,vid_key,video_id,sentence` → split `test_1k_a`;
//! - BLIP/mPLUG `msrvtt_test.jsonl`: `{clip_name, caption}` per line → split `test`;
//! - MSRVTT-QA `{train,val,test}_qa.json`: `[{answer, id, question, video_id: int}]` → `video{n}`;
//! - ClipBERT-style QA jsonl: `{question, answer, video_id: "video7010"}`, id = line index.

use std::path::Path;

use serde_json::Value;

use super::coco::{file_label, split_from_file_name};
use super::json::{parse_json, structure_error, type_name};
use super::video::{QaItem, VideoCollector, VideoIndex};
use crate::error::{Error, Result};
use crate::shards::manifest::RejectUnit;

/// Adds one MSRVTT file's records to `c`.
pub fn read_msrvtt_file(
    path: &Path,
    bytes: &[u8],
    index: &VideoIndex,
    c: &mut VideoCollector,
    split_override: Option<&str>,
) -> Result<()> {
    let label = file_label(path);
    let name = label.to_lowercase();
    if name.ends_with(".csv") {
        return read_jsfusion_csv(path, bytes, index, c, split_override.unwrap_or("test_1k_a"));
    }
    if name.ends_with(".jsonl") {
        return read_jsonl(path, bytes, index, c, split_override);
    }
    let value = parse_json(path, bytes)?;
    let split = split_override.map(str::to_string);
    match &value {
        Value::Object(o) if o.contains_key("videos") && o.contains_key("sentences") => {
            read_videodatainfo(path, &value, index, c, split.as_deref())
        }
        Value::Array(_) => {
            let split = split.unwrap_or_else(|| split_from_file_name(path));
            read_qa_list(
                path,
                &value,
                index,
                c,
                &split,
                |n| format!("video{n}"),
                |id| id.to_string(),
            )
        }
        other => Err(structure_error(
            path,
            "$",
            format!(
                "not an MSRVTT file: expected {{videos, sentences}} or a QA list, found {}",
                type_name(other)
            ),
        )),
    }
}

fn read_videodatainfo(
    path: &Path,
    value: &Value,
    index: &VideoIndex,
    c: &mut VideoCollector,
    split_override: Option<&str>,
) -> Result<()> {
    let label = file_label(path);
    let videos = value["videos"]
        .as_array()
        .ok_or_else(|| structure_error(path, "$.videos", "expected a list"))?;
    let mut split_of = std::collections::HashMap::new();
    for (i, v) in videos.iter().enumerate() {
        let (Some(id), Some(split)) = (v["video_id"].as_str(), v["split"].as_str()) else {
            c.reject(
                &label,
                format!("videos[{i}]"),
                RejectUnit::Clip,
                "record lacks a string video_id or split",
            );
            continue;
        };
        let split = match split {
            "validate" => "val",
            s => s,
        };
        split_of.insert(id.to_string(), split_override.unwrap_or(split).to_string());
    }
    let sentences = value["sentences"]
        .as_array()
        .ok_or_else(|| structure_error(path, "$.sentences", "expected a list"))?;
    for (i, s) in sentences.iter().enumerate() {
        let Some(id) = s["video_id"].as_str() else {
            c.reject(
                &label,
                format!("sentences[{i}]"),
                RejectUnit::Caption,
                "record lacks a string video_id",
            );
            continue;
        };
        let Some(caption) = s["caption"].as_str() else {
            c.reject(
                &label,
                format!("{id}#sentences[{i}]"),
                RejectUnit::Caption,
                format!("caption is {}, not a string", type_name(&s["caption"])),
            );
            continue;
        };
        let Some(split) = split_of.get(id) else {
            c.reject(
                &label,
                format!("{id}#sentences[{i}]"),
                RejectUnit::Caption,
                "video_id not listed in `videos`",
            );
            continue;
        };
        let split = split.clone();
        if let Some(sample) = c.sample(index, &label, id, id, &split) {
            sample.captions.push(caption.to_string());
        }
    }
    Ok(())
}

fn read_jsfusion_csv(
    path: &Path,
    bytes: &[u8],
    index: &VideoIndex,
    c: &mut VideoCollector,
    split: &str,
) -> Result<()> {
    let label = file_label(path);
    let text = String::from_utf8_lossy(bytes);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let cols: Vec<&str> = header.split(',').map(str::trim).collect();
    let (Some(vid), Some(sent)) = (
        cols.iter().position(|c| *c == "video_id"),
        cols.iter().position(|c| *c == "sentence"),
    ) else {
        return Err(Error::Annotation {
            path: path.to_path_buf(),
            position: "line 1".into(),
            message: format!("expected a header with video_id and sentence, found `{header}`"),
        });
    };
    for (n, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        // the sentence is the last column and may itself contain commas
        let fields: Vec<&str> = line.splitn(cols.len(), ',').collect();
        let (Some(id), Some(caption)) = (fields.get(vid), fields.get(sent)) else {
            c.reject(
                &label,
                format!("line {}", n + 2),
                RejectUnit::Caption,
                "too few columns",
            );
            continue;
        };
        let id = id.trim();
        if let Some(sample) = c.sample(index, &label, id, id, split) {
            sample.captions.push(caption.trim().to_string());
        }
    }
    Ok(())
}

fn read_jsonl(
    path: &Path,
    bytes: &[u8],
    index: &VideoIndex,
    c: &mut VideoCollector,
    split_override: Option<&str>,
) -> Result<()> {
    let label = file_label(path);
    let split = split_override
        .map(str::to_string)
        .unwrap_or_else(|| split_from_file_name(path));
    for (n, line) in String::from_utf8_lossy(bytes).lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = super::json::parse_json_line(path, n + 1, line)?;
        if let (Some(id), Some(caption)) = (v["clip_name"].as_str(), v["caption"].as_str()) {
            if let Some(sample) = c.sample(index, &label, id, id, &split) {
                sample.captions.push(caption.to_string());
            }
        } else if let (Some(id), Some(q), Some(a)) = (
            v["video_id"].as_str(),
            v["question"].as_str(),
            v["answer"].as_str(),
        ) {
            if let Some(sample) = c.sample(index, &label, id, id, &split) {
                sample.qa.push(QaItem {
                    id: n as i64,
                    question: q.to_string(),
                    answer: a.to_string(),
                });
            }
        } else {
            c.reject(
                &label,
                format!("line {}", n + 1),
                RejectUnit::Caption,
                "expected {clip_name, caption} or {video_id, question, answer} strings",
            );
        }
    }
    Ok(())
}

/// `[{answer, id, question, video_id: int}]` (MSRVTT-QA, MSVD-QA). `clip_id` names the clip from the
/// integer id; `file_stem` maps that name to the file stem.
pub fn read_qa_list(
    path: &Path,
    value: &Value,
    index: &VideoIndex,
    c: &mut VideoCollector,
    split: &str,
    clip_id: impl Fn(i64) -> String,
    file_stem: impl Fn(&str) -> String,
) -> Result<()> {
    let label = file_label(path);
    let items = value
        .as_array()
        .ok_or_else(|| structure_error(path, "$", "expected a list"))?;
    for (i, q) in items.iter().enumerate() {
        let Some(vid) = q["video_id"].as_i64() else {
            c.reject(
                &label,
                format!("[{i}]"),
                RejectUnit::Question,
                format!("video_id is {}, not an integer", type_name(&q["video_id"])),
            );
            continue;
        };
        let (Some(question), Some(answer)) = (q["question"].as_str(), q["answer"].as_str()) else {
            c.reject(
                &label,
                format!("[{i}]"),
                RejectUnit::Question,
                "question or answer is not a string",
            );
            continue;
        };
        let id = q["id"].as_i64().unwrap_or(i as i64);
        let clip = clip_id(vid);
        let stem = file_stem(&clip);
        if let Some(sample) = c.sample(index, &label, &clip, &stem, split) {
            sample.qa.push(QaItem {
                id,
                question: question.to_string(),
                answer: answer.to_string(),
            });
        }
    }
    Ok(())
}
