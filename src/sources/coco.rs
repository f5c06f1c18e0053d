//! COCO captions in the three layouts users have on disk:
//!
//! * official `captions_{train,val}{2014,2017}.json`: `{"images": [{id, file_name, ...}],
//!   "annotations": [{image_id, id, caption}]}`; images are looked up in `--images/<file_name>` or, when
//!   that directory exists, `--images/<train2014|val2014|...>/<file_name>` (named after the file);
//! * Karpathy `dataset_coco.json`: `{"images": [{filepath, filename, split, cocoid, sentences: [{raw}]}]}`;
//! * ALBEF/mPLUG lists (`coco_karpathy_train.json`, …): `[{image, caption: str | [str], image_id?}]`.
//!
//! The layout is detected per file from its content.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::collect::CaptionCollector;
use super::json::{id_string, parse_json, structure_error, type_name};
use super::{CaptionSample, Source, SourceOutput};
use crate::error::{Error, Result};
use crate::shards::manifest::SourceFile;

/// The annotation layouts this source reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CocoLayout {
    /// `captions_*.json` from cocodataset.org.
    Official,
    /// Karpathy's `dataset_coco.json`.
    Karpathy,
    /// ALBEF/BLIP/mPLUG json list.
    AlbefList,
}

/// Reads COCO caption annotations.
#[derive(Debug, Clone)]
pub struct CocoSource {
    /// Annotation files, in the order given.
    pub annotation_files: Vec<PathBuf>,
    /// The image root (used to find official-layout images in split sub-directories).
    pub image_root: PathBuf,
    /// Forces every sample's split (otherwise taken from the file name or the Karpathy field).
    pub split_override: Option<String>,
}

/// Detects the layout of a parsed annotation file.
pub fn detect_layout(path: &Path, v: &Value) -> Result<CocoLayout> {
    match v {
        Value::Array(_) => Ok(CocoLayout::AlbefList),
        Value::Object(o) if o.contains_key("annotations") && o.contains_key("images") => {
            Ok(CocoLayout::Official)
        }
        Value::Object(o) if o.contains_key("images") => Ok(CocoLayout::Karpathy),
        _ => Err(structure_error(
            path,
            "$",
            "not a COCO caption file: expected an object with `images` and `annotations` (official), an object \
             with `images` (Karpathy dataset_coco.json) or a list of {image, caption} records (ALBEF/mPLUG)",
        )),
    }
}

/// The split named by a file name: `captions_val2014.json` → `val`, `coco_karpathy_test.json` → `test`.
pub fn split_from_file_name(path: &Path) -> String {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_lowercase();
    for split in ["restval", "train", "val", "test"] {
        if stem.contains(split) {
            return split.to_string();
        }
    }
    "train".to_string()
}

/// The file name used in manifests and reject records.
pub fn file_label(path: &Path) -> String {
    path.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("annotations")
        .to_string()
}

impl Source for CocoSource {
    type Sample = CaptionSample;

    fn read(&self) -> Result<SourceOutput<CaptionSample>> {
        let mut collector = CaptionCollector::new();
        let mut files = Vec::new();
        for path in &self.annotation_files {
            let bytes = read_annotation_file(path, &mut files)?;
            self.read_file(path, &bytes, &mut collector)?;
        }
        let (samples, rejects) = collector.finish();
        Ok(SourceOutput {
            samples,
            rejects,
            files,
        })
    }
}

/// Reads an annotation file and records its name, size and hash in `files`.
pub fn read_annotation_file(path: &Path, files: &mut Vec<SourceFile>) -> Result<Vec<u8>> {
    let bytes = super::files::read_regular_file(path).map_err(|e| {
        Error::input_caused(
            format!("cannot read annotation file `{}`", path.display()),
            e,
        )
        .with_hint("check the --annotations paths")
    })?;
    files.push(SourceFile {
        name: file_label(path),
        bytes: bytes.len() as u64,
        blake3: blake3::hash(&bytes).to_hex().to_string(),
    });
    Ok(bytes)
}

impl CocoSource {
    /// Adds one caption json file (any of the three layouts) to `collector`.
    pub fn read_file(
        &self,
        path: &Path,
        bytes: &[u8],
        collector: &mut CaptionCollector,
    ) -> Result<()> {
        let value = parse_json(path, bytes)?;
        let split = self
            .split_override
            .clone()
            .unwrap_or_else(|| split_from_file_name(path));
        match detect_layout(path, &value)? {
            CocoLayout::Official => self.read_official(path, &value, &split, collector),
            CocoLayout::Karpathy => {
                read_karpathy(path, &value, self.split_override.as_deref(), collector)
            }
            CocoLayout::AlbefList => read_albef(path, &value, &split, collector),
        }
    }
}

fn array_field<'a>(path: &Path, v: &'a Value, key: &str) -> Result<&'a Vec<Value>> {
    v.get(key).and_then(Value::as_array).ok_or_else(|| {
        let found = v.get(key).map_or("nothing", type_name);
        structure_error(
            path,
            &format!("$.{key}"),
            format!("expected a list, found {found}"),
        )
    })
}

impl CocoSource {
    fn read_official(
        &self,
        path: &Path,
        v: &Value,
        split: &str,
        c: &mut CaptionCollector,
    ) -> Result<()> {
        let file = file_label(path);
        // captions_val2014.json → images may sit in <root>/val2014/
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let sub_dir = stem
            .strip_prefix("captions_")
            .filter(|d| self.image_root.join(d).is_dir());
        let mut index_by_id = std::collections::HashMap::new();
        for (i, img) in array_field(path, v, "images")?.iter().enumerate() {
            let Some(id) = img.get("id").and_then(id_string) else {
                c.reject(
                    &file,
                    format!("images[{i}]"),
                    "image record has no integer or string `id`",
                );
                continue;
            };
            let Some(name) = img.get("file_name").and_then(Value::as_str) else {
                c.reject(&file, id, "image record has no string `file_name`");
                continue;
            };
            if index_by_id.contains_key(&id) {
                c.reject(
                    &file,
                    id.clone(),
                    format!("duplicate image id `{id}` in `images`"),
                );
                continue;
            }
            let rel = match sub_dir {
                Some(d) => format!("{d}/{name}"),
                None => name.to_string(),
            };
            if let Some(idx) = c.add_image(&file, &rel, Some(id.clone()), split) {
                index_by_id.insert(id, idx);
            }
        }
        for (j, ann) in array_field(path, v, "annotations")?.iter().enumerate() {
            let ann_ref = ann
                .get("id")
                .and_then(id_string)
                .unwrap_or_else(|| format!("annotations[{j}]"));
            let Some(image_id) = ann.get("image_id").and_then(id_string) else {
                c.reject_caption(&file, ann_ref, "annotation has no `image_id`");
                continue;
            };
            let Some(&idx) = index_by_id.get(&image_id) else {
                c.reject_caption(
                    &file,
                    format!("{image_id}#{ann_ref}"),
                    format!("annotation refers to unknown image id `{image_id}`"),
                );
                continue;
            };
            c.add_caption(
                &file,
                idx,
                &ann_ref,
                ann.get("caption").unwrap_or(&Value::Null),
            );
        }
        Ok(())
    }
}

fn read_karpathy(
    path: &Path,
    v: &Value,
    split_override: Option<&str>,
    c: &mut CaptionCollector,
) -> Result<()> {
    let file = file_label(path);
    for (i, img) in array_field(path, v, "images")?.iter().enumerate() {
        let Some(name) = img.get("filename").and_then(Value::as_str) else {
            c.reject(
                &file,
                format!("images[{i}]"),
                "image record has no string `filename`",
            );
            continue;
        };
        let rel = match img.get("filepath").and_then(Value::as_str) {
            Some(dir) if !dir.is_empty() => format!("{dir}/{name}"),
            _ => name.to_string(),
        };
        let id = img
            .get("cocoid")
            .or_else(|| img.get("imgid"))
            .and_then(id_string);
        let split = match (split_override, img.get("split").and_then(Value::as_str)) {
            (Some(s), _) => s.to_string(),
            (None, Some(s)) => s.to_string(),
            (None, None) => {
                c.reject(
                    &file,
                    id.unwrap_or(rel),
                    "image record has no string `split`",
                );
                continue;
            }
        };
        let Some(idx) = c.add_image(&file, &rel, id, &split) else {
            continue;
        };
        // No `sentences` list: the image ends with no caption and `finish` rejects it.
        let sentences = img
            .get("sentences")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        for (k, s) in sentences.iter().enumerate() {
            let sref = s
                .get("sentid")
                .and_then(id_string)
                .unwrap_or_else(|| k.to_string());
            c.add_caption(&file, idx, &sref, s.get("raw").unwrap_or(&Value::Null));
        }
    }
    Ok(())
}

fn read_albef(path: &Path, v: &Value, split: &str, c: &mut CaptionCollector) -> Result<()> {
    let file = file_label(path);
    let Value::Array(records) = v else {
        return Err(structure_error(path, "$", "expected a list"));
    };
    for (i, r) in records.iter().enumerate() {
        let Some(image) = r.get("image").and_then(Value::as_str) else {
            c.reject(&file, format!("[{i}]"), "record has no string `image`");
            continue;
        };
        let id = r.get("image_id").and_then(id_string);
        let Some(idx) = c.add_image(&file, image, id, split) else {
            continue;
        };
        match r.get("caption") {
            Some(Value::Array(list)) => {
                for (k, cap) in list.iter().enumerate() {
                    c.add_caption(&file, idx, &format!("{i}.{k}"), cap);
                }
            }
            Some(cap) => c.add_caption(&file, idx, &i.to_string(), cap),
            None => c.add_caption(&file, idx, &i.to_string(), &Value::Null),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_names_come_from_file_names() {
        assert_eq!(
            split_from_file_name(Path::new("captions_val2014.json")),
            "val"
        );
        assert_eq!(
            split_from_file_name(Path::new("a/coco_karpathy_test.json")),
            "test"
        );
        assert_eq!(
            split_from_file_name(Path::new("captions_train2017.json")),
            "train"
        );
        assert_eq!(split_from_file_name(Path::new("pretrain.json")), "train");
    }
}
