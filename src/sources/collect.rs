//! `CaptionCollector`: groups caption records by image, detecting duplicate ids and split conflicts.
//! Shared by every image–caption source (COCO, Flickr30K, SBU, CC3M, …).

use std::collections::HashMap;

use serde_json::Value;

use super::CaptionSample;
use super::image_root::check_relative_path;
use super::json::type_name;
use crate::shards::manifest::{RejectRecord, RejectStage, RejectUnit};

/// Accumulates caption records into one sample per image.
#[derive(Debug, Default)]
pub struct CaptionCollector {
    samples: Vec<CaptionSample>,
    by_path: HashMap<String, usize>,
    path_by_id: HashMap<String, String>,
    rejects: Vec<RejectRecord>,
}

impl CaptionCollector {
    /// A new, empty collector.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a rejected image record.
    pub fn reject(
        &mut self,
        source: &str,
        sample_id: impl Into<String>,
        reason: impl Into<String>,
    ) {
        self.push_reject(source, sample_id.into(), RejectUnit::Image, reason.into());
    }

    /// Records a rejected caption record.
    pub fn reject_caption(
        &mut self,
        source: &str,
        sample_id: impl Into<String>,
        reason: impl Into<String>,
    ) {
        self.push_reject(source, sample_id.into(), RejectUnit::Caption, reason.into());
    }

    fn push_reject(&mut self, source: &str, sample_id: String, unit: RejectUnit, reason: String) {
        self.rejects.push(RejectRecord {
            source: source.to_string(),
            sample_id,
            stage: RejectStage::Annotation,
            unit,
            reason,
        });
    }

    /// Registers an image; returns its index, or `None` if it was rejected (the reject is recorded).
    /// `image_id = None` uses the path as the id. Registering a known path again with the same id and
    /// split returns the existing index (one row per image, pixels stored once).
    pub fn add_image(
        &mut self,
        file: &str,
        raw_path: &str,
        image_id: Option<String>,
        split: &str,
    ) -> Option<usize> {
        let shown_id = image_id.clone().unwrap_or_else(|| raw_path.to_string());
        let path = match check_relative_path(raw_path) {
            Ok(p) => p,
            Err(reason) => {
                self.rejects.push(RejectRecord {
                    source: file.to_string(),
                    sample_id: shown_id,
                    stage: RejectStage::Path,
                    unit: RejectUnit::Image,
                    reason,
                });
                return None;
            }
        };
        let id = image_id.unwrap_or_else(|| path.clone());
        if let Some(&idx) = self.by_path.get(&path) {
            let existing = &self.samples[idx];
            if existing.image_id != id {
                let reason = format!(
                    "image `{path}` already has id `{}`; this record says `{id}`",
                    existing.image_id
                );
                self.reject(file, id, reason);
                return None;
            }
            if existing.split != split {
                let reason = format!(
                    "image `{path}` is already in split `{}`; this record puts it in `{split}`",
                    existing.split
                );
                self.reject(file, id, reason);
                return None;
            }
            return Some(idx);
        }
        if let Some(other) = self.path_by_id.get(&id) {
            let reason = format!("duplicate image id `{id}`: already used by `{other}`");
            self.reject(file, id, reason);
            return None;
        }
        self.path_by_id.insert(id.clone(), path.clone());
        self.by_path.insert(path.clone(), self.samples.len());
        self.samples.push(CaptionSample {
            image_id: id,
            split: split.to_string(),
            source_path: path,
            captions: Vec::new(),
        });
        Some(self.samples.len() - 1)
    }

    /// Adds a caption value to image `idx`, rejecting non-strings and empty strings.
    /// `caption_ref` names the caption in reject records (e.g. an annotation id).
    pub fn add_caption(&mut self, file: &str, idx: usize, caption_ref: &str, caption: &Value) {
        let image_id = self.samples[idx].image_id.clone();
        match caption {
            Value::String(s) if !s.trim().is_empty() => self.samples[idx].captions.push(s.clone()),
            Value::String(_) => {
                self.reject_caption(file, format!("{image_id}#{caption_ref}"), "empty caption")
            }
            other => self.reject_caption(
                file,
                format!("{image_id}#{caption_ref}"),
                format!("caption is {}, not a string", type_name(other)),
            ),
        }
    }

    /// Finishes: images left without any valid caption are rejected.
    pub fn finish(mut self) -> (Vec<CaptionSample>, Vec<RejectRecord>) {
        let mut kept = Vec::with_capacity(self.samples.len());
        for s in std::mem::take(&mut self.samples) {
            if s.captions.is_empty() {
                self.rejects.push(RejectRecord {
                    source: s.source_path.clone(),
                    sample_id: s.image_id.clone(),
                    stage: RejectStage::Annotation,
                    unit: RejectUnit::Image,
                    reason: "image has no valid caption".to_string(),
                });
            } else {
                kept.push(s);
            }
        }
        (kept, self.rejects)
    }
}
