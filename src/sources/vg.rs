//! Visual Genome: `region_descriptions.json` (v1.2 region keys `region_id`/`image_id`, v1.0 keys
//! `id`/`image`) as image captions, `question_answers.json` as QA, `image_data.json` for the image
//! files. Every file kind is recognised from its content.
//!
//! Image paths: `image_data.json`'s `url` ends in `VG_100K/<id>.jpg` or `VG_100K_2/<id>.jpg`, the
//! folders of the two zip files, so its last two components are the path under `--images`. Without
//! it, the image is looked up in `VG_100K/`, `VG_100K_2/` and `--images` itself, in that order.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::coco::{file_label, read_annotation_file};
use super::collect::CaptionCollector;
use super::json::{id_string, parse_json, structure_error};
use crate::error::Result;
use crate::shards::manifest::SourceFile;

/// What a VG json file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VgFileKind {
    /// `region_descriptions.json`.
    Regions,
    /// `question_answers.json`.
    QuestionAnswers,
    /// `image_data.json`.
    ImageData,
}

/// Recognises a VG file from its first record.
pub fn detect_vg_kind(path: &Path, v: &Value) -> Result<VgFileKind> {
    let first = v.as_array().and_then(|a| a.first());
    match first {
        Some(r) if r.get("regions").is_some() => Ok(VgFileKind::Regions),
        Some(r) if r.get("qas").is_some() => Ok(VgFileKind::QuestionAnswers),
        Some(r) if r.get("url").is_some() => Ok(VgFileKind::ImageData),
        _ => Err(structure_error(
            path,
            "$[0]",
            "not a Visual Genome file: expected a list of {regions}, {qas} or {url, image_id} records",
        )),
    }
}

/// Parsed VG files, by kind.
#[derive(Debug, Default)]
pub struct VgFiles {
    /// (file, parsed json) of region files.
    pub regions: Vec<(PathBuf, Value)>,
    /// (file, parsed json) of QA files.
    pub qas: Vec<(PathBuf, Value)>,
    /// Image id → relative path (from image_data.json).
    pub paths: HashMap<String, String>,
    /// The files read.
    pub files: Vec<SourceFile>,
}

/// Reads and sorts VG annotation files.
pub fn read_vg_files(annotation_files: &[PathBuf]) -> Result<VgFiles> {
    let mut out = VgFiles::default();
    for path in annotation_files {
        let bytes = read_annotation_file(path, &mut out.files)?;
        let v = parse_json(path, &bytes)?;
        match detect_vg_kind(path, &v)? {
            VgFileKind::Regions => out.regions.push((path.clone(), v)),
            VgFileKind::QuestionAnswers => out.qas.push((path.clone(), v)),
            VgFileKind::ImageData => {
                for r in v.as_array().map_or(&[][..], Vec::as_slice) {
                    let id = r
                        .get("image_id")
                        .or_else(|| r.get("id"))
                        .and_then(id_string);
                    let url = r.get("url").and_then(Value::as_str);
                    if let (Some(id), Some(url)) = (id, url) {
                        let mut parts = url.rsplit('/');
                        if let (Some(name), Some(dir)) = (parts.next(), parts.next()) {
                            out.paths.insert(id, format!("{dir}/{name}"));
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

impl VgFiles {
    /// The image path of `id` relative to `root` (see the module docs).
    pub fn image_path(&self, root: &Path, id: &str) -> String {
        if let Some(p) = self.paths.get(id) {
            return p.clone();
        }
        let candidates = [
            format!("VG_100K/{id}.jpg"),
            format!("VG_100K_2/{id}.jpg"),
            format!("{id}.jpg"),
        ];
        candidates
            .iter()
            .find(|c| root.join(c).is_file())
            .unwrap_or(&candidates[0])
            .clone()
    }
}

/// The image id of a VG record: the record's `id`/`image_id`, else its first item's `image_id`/`image`.
pub fn record_image_id(r: &Value, items_key: &str) -> Option<String> {
    r.get("image_id")
        .or_else(|| r.get("id"))
        .and_then(id_string)
        .or_else(|| {
            let first = r.get(items_key)?.as_array()?.first()?;
            first
                .get("image_id")
                .or_else(|| first.get("image"))
                .and_then(id_string)
        })
}

/// Adds every region phrase of the region files as a caption of its image.
pub fn collect_region_captions(vg: &VgFiles, root: &Path, split: &str, c: &mut CaptionCollector) {
    for (path, v) in &vg.regions {
        let file = file_label(path);
        for (i, r) in v
            .as_array()
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .enumerate()
        {
            let Some(id) = record_image_id(r, "regions") else {
                c.reject(&file, format!("[{i}]"), "record has no image id");
                continue;
            };
            let rel = vg.image_path(root, &id);
            let Some(idx) = c.add_image(&file, &rel, Some(id.clone()), split) else {
                continue;
            };
            let regions = r.get("regions").and_then(Value::as_array);
            for (k, region) in regions.map_or(&[][..], Vec::as_slice).iter().enumerate() {
                // v1.2: region_id; v1.0: id.
                let rid = region
                    .get("region_id")
                    .or_else(|| region.get("id"))
                    .and_then(id_string)
                    .unwrap_or_else(|| format!("regions[{k}]"));
                let phrase = region.get("phrase").unwrap_or(&Value::Null);
                c.add_caption(&file, idx, &rid, phrase);
            }
        }
    }
}

/// Visual Genome region descriptions as image captions (`image_text.v1`).
#[derive(Debug, Clone)]
pub struct VgCaptionSource {
    /// region_descriptions.json (+ image_data.json).
    pub annotation_files: Vec<PathBuf>,
    /// The image root (holding `VG_100K/` and `VG_100K_2/`).
    pub image_root: PathBuf,
    /// Forces the split (`train` otherwise: VG is pre-training data).
    pub split_override: Option<String>,
}

impl super::Source for VgCaptionSource {
    type Sample = super::CaptionSample;

    fn read(&self) -> Result<super::SourceOutput<super::CaptionSample>> {
        let vg = read_vg_files(&self.annotation_files)?;
        if let Some((path, _)) = vg.qas.first() {
            return Err(crate::Error::input_with_hint(
                format!(
                    "`{}` holds questions, and region captions and QA go to different schemas",
                    file_label(path)
                ),
                "ingest question_answers.json (with image_data.json) separately: mplug ingest vg \
                 --annotations question_answers.json image_data.json … (or with VQA: mplug ingest vqa \
                 … --vg-images DIR)",
            ));
        }
        if vg.regions.is_empty() {
            return Err(crate::Error::input(
                "no region_descriptions.json among --annotations",
            ));
        }
        let split = self.split_override.as_deref().unwrap_or("train");
        let mut c = CaptionCollector::new();
        collect_region_captions(&vg, &self.image_root, split, &mut c);
        let (samples, rejects) = c.finish();
        Ok(super::SourceOutput {
            samples,
            rejects,
            files: vg.files,
        })
    }
}
