//! RefCOCO, RefCOCO+ and RefCOCOg: refer's `refs(<split_by>).p` pickles (parsed by our own pickle
//! VM, which never executes anything) joined with `instances.json` for the boxes, or the
//! TransVG/mPLUG split files `<dataset>_<split>.pth` (`torch.save`d lists of
//! `(img_file, _, [x, y, w, h], phrase, …)`).
//!
//! The dataset is named by the folder holding the pickle (`refcoco/`, `refcoco+/`, `refcocog/`), as
//! refer lays them out; images are `COCO_train2014_<id:012>.jpg` under `--images` (or its
//! `train2014/`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::coco::{file_label, read_annotation_file};
use super::image_root::check_relative_path;
use super::json::{parse_json, structure_error};
use super::{Source, SourceOutput};
use crate::error::{Error, Result};
use crate::pickle::Value as Pk;
use crate::shards::manifest::{RejectRecord, RejectStage, RejectUnit};

/// A referred object.
#[derive(Debug, Clone, PartialEq)]
pub struct RefObject {
    /// refer ref_id.
    pub ref_id: i64,
    /// COCO annotation id (-1 when unknown).
    pub ann_id: i64,
    /// COCO category (-1 when unknown).
    pub category_id: i32,
    /// [x, y, w, h] in source pixels.
    pub bbox: [f64; 4],
}

/// A referring expression.
#[derive(Debug, Clone, PartialEq)]
pub struct RefSentence {
    /// sent_id.
    pub sent_id: i64,
    /// Index into the sample's objects.
    pub object: usize,
    /// The expression.
    pub text: String,
}

/// An image with its objects and expressions.
#[derive(Debug, Clone, PartialEq)]
pub struct RefSample {
    /// COCO image id.
    pub image_id: String,
    /// Split.
    pub split: String,
    /// refcoco | refcoco+ | refcocog.
    pub dataset: String,
    /// unc | umd | google | pth.
    pub split_by: String,
    /// Path under `--images`.
    pub source_path: String,
    /// Objects.
    pub objects: Vec<RefObject>,
    /// Expressions.
    pub sentences: Vec<RefSentence>,
}

/// Reads the RefCOCO family.
#[derive(Debug, Clone)]
pub struct RefcocoSource {
    /// `refs(*).p`, `instances.json`, `*.pth`.
    pub annotation_files: Vec<PathBuf>,
    /// COCO train2014 image root.
    pub image_root: PathBuf,
    /// Forces every sample's split.
    pub split_override: Option<String>,
}

fn num(v: &Pk) -> Option<f64> {
    match v {
        Pk::Int(i) => Some(*i as f64),
        Pk::Float(f) => Some(*f),
        _ => None,
    }
}

fn bbox4(items: &[f64]) -> Option<[f64; 4]> {
    (items.len() == 4 && items.iter().all(|x| x.is_finite()))
        .then(|| [items[0], items[1], items[2], items[3]])
}

/// `refs(unc).p` → `unc`.
fn split_by_of(path: &Path) -> String {
    let name = file_label(path);
    name.split_once('(')
        .and_then(|(_, r)| r.split_once(')'))
        .map_or_else(|| "unc".to_string(), |(s, _)| s.to_string())
}

/// The dataset named by the folder holding `path`.
fn dataset_of(path: &Path) -> String {
    let parent = path
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_lowercase();
    match parent.as_str() {
        "refcoco" | "refcoco+" | "refcocog" => parent,
        _ => "refcoco".to_string(),
    }
}

#[derive(Default)]
struct RefCollector {
    samples: Vec<RefSample>,
    index: HashMap<(String, String, String), usize>,
    rejects: Vec<RejectRecord>,
}

impl RefCollector {
    fn reject(
        &mut self,
        file: &str,
        id: String,
        stage: RejectStage,
        unit: RejectUnit,
        reason: String,
    ) {
        self.rejects.push(RejectRecord {
            source: file.to_string(),
            sample_id: id,
            stage,
            unit,
            reason,
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        file: &str,
        key: (&str, &str, &str),
        image_id: &str,
        raw_path: &str,
        object: RefObject,
        sentences: Vec<(i64, String)>,
    ) {
        let (dataset, split_by, split) = key;
        let path = match check_relative_path(raw_path) {
            Ok(p) => p,
            Err(reason) => {
                let id = object.ref_id.to_string();
                self.reject(file, id, RejectStage::Path, RejectUnit::Ref, reason);
                return;
            }
        };
        let k = (
            format!("{dataset}/{split_by}"),
            split.to_string(),
            path.clone(),
        );
        let idx = *self.index.entry(k).or_insert_with(|| {
            self.samples.push(RefSample {
                image_id: image_id.to_string(),
                split: split.to_string(),
                dataset: dataset.to_string(),
                split_by: split_by.to_string(),
                source_path: path,
                objects: Vec::new(),
                sentences: Vec::new(),
            });
            self.samples.len() - 1
        });
        let s = &mut self.samples[idx];
        let object_idx = s.objects.len();
        s.objects.push(object);
        for (sent_id, text) in sentences {
            s.sentences.push(RefSentence {
                sent_id,
                object: object_idx,
                text,
            });
        }
    }
}

/// `instances.json`: annotation id → (bbox, category, image id).
type Instances = HashMap<i64, ([f64; 4], i32)>;

fn read_instances(path: &Path, bytes: &[u8], out: &mut Instances) -> Result<()> {
    let v = parse_json(path, bytes)?;
    let Some(anns) = v.get("annotations").and_then(|a| a.as_array()) else {
        return Err(structure_error(
            path,
            "$.annotations",
            "expected COCO instances (a list of annotations)",
        ));
    };
    for a in anns {
        let id = a.get("id").and_then(serde_json::Value::as_i64);
        let bbox: Option<Vec<f64>> = a
            .get("bbox")
            .and_then(|b| b.as_array())
            .map(|b| b.iter().filter_map(serde_json::Value::as_f64).collect());
        let cat = a
            .get("category_id")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(-1);
        if let (Some(id), Some(b)) = (id, bbox.as_deref().and_then(bbox4)) {
            out.insert(id, (b, cat as i32));
        }
    }
    Ok(())
}

impl RefcocoSource {
    fn coco_path(&self, image_id: i64) -> String {
        let name = format!("COCO_train2014_{image_id:012}.jpg");
        if self.image_root.join("train2014").is_dir() {
            format!("train2014/{name}")
        } else {
            name
        }
    }

    fn read_refs(
        &self,
        path: &Path,
        root: &Pk,
        instances: &Instances,
        c: &mut RefCollector,
    ) -> Result<()> {
        let file = file_label(path);
        let (dataset, split_by) = (dataset_of(path), split_by_of(path));
        let Some(refs) = root.as_items() else {
            return Err(structure_error(
                path,
                "$",
                format!("expected a list of refs, found {}", root.type_name()),
            ));
        };
        for (i, r) in refs.iter().enumerate() {
            let int = |k: &str| r.get(k).and_then(|v| v.as_int());
            let ref_id = int("ref_id").unwrap_or(i as i64);
            let (Some(image_id), Some(ann_id), Some(split)) =
                (int("image_id"), int("ann_id"), r.get("split"))
            else {
                let reason = "ref needs image_id, ann_id and split".to_string();
                c.reject(
                    &file,
                    ref_id.to_string(),
                    RejectStage::Annotation,
                    RejectUnit::Ref,
                    reason,
                );
                continue;
            };
            let split = self
                .split_override
                .clone()
                .unwrap_or_else(|| split.as_str().unwrap_or("train").to_string());
            let Some(&(bbox, category)) = instances.get(&ann_id) else {
                let reason = format!(
                    "annotation {ann_id} is not in instances.json (pass the instances.json next to the pickle)"
                );
                c.reject(
                    &file,
                    ref_id.to_string(),
                    RejectStage::Annotation,
                    RejectUnit::Ref,
                    reason,
                );
                continue;
            };
            let mut sentences = Vec::new();
            for (k, s) in r
                .get("sentences")
                .and_then(|s| s.as_items())
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                let sent_id = s
                    .get("sent_id")
                    .and_then(|v| v.as_int())
                    .unwrap_or(k as i64);
                match s.get("sent").as_ref().and_then(Pk::as_str) {
                    Some(t) if !t.trim().is_empty() => sentences.push((sent_id, t.to_string())),
                    _ => c.reject(
                        &file,
                        format!("{ref_id}#{sent_id}"),
                        RejectStage::Annotation,
                        RejectUnit::Caption,
                        "empty or missing `sent`".to_string(),
                    ),
                }
            }
            if sentences.is_empty() {
                c.reject(
                    &file,
                    ref_id.to_string(),
                    RejectStage::Annotation,
                    RejectUnit::Ref,
                    "ref has no valid sentence".to_string(),
                );
                continue;
            }
            let object = RefObject {
                ref_id,
                ann_id,
                category_id: category,
                bbox,
            };
            let rel = self.coco_path(image_id);
            c.add(
                &file,
                (&dataset, &split_by, &split),
                &image_id.to_string(),
                &rel,
                object,
                sentences,
            );
        }
        Ok(())
    }

    fn read_pth(&self, path: &Path, root: &Pk, c: &mut RefCollector) -> Result<()> {
        let file = file_label(path);
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let (dataset, split) = stem.rsplit_once('_').unwrap_or(("refcoco", "train"));
        let split = self
            .split_override
            .clone()
            .unwrap_or_else(|| split.to_string());
        let dataset = dataset
            .replace("unc+", "refcoco+")
            .replace("unc", "refcoco")
            .replace("gref_umd", "refcocog");
        let Some(items) = root.as_items() else {
            return Err(structure_error(
                path,
                "$",
                format!("expected a list of tuples, found {}", root.type_name()),
            ));
        };
        for (i, t) in items.iter().enumerate() {
            let fields = t.as_items().unwrap_or_default();
            let img = fields.first().and_then(Pk::as_str).map(str::to_string);
            let bbox: Option<Vec<f64>> = fields
                .get(2)
                .and_then(Pk::as_items)
                .map(|b| b.iter().filter_map(num).collect());
            let phrase = fields.get(3).and_then(Pk::as_str).map(str::to_string);
            let (Some(img), Some(bbox), Some(phrase)) =
                (img, bbox.as_deref().and_then(bbox4), phrase)
            else {
                let reason = "expected (img_file, _, [x, y, w, h], phrase, …)".to_string();
                c.reject(
                    &file,
                    format!("[{i}]"),
                    RejectStage::Annotation,
                    RejectUnit::Ref,
                    reason,
                );
                continue;
            };
            let image_id = img
                .trim_end_matches(".jpg")
                .rsplit('_')
                .next()
                .map(|d| d.trim_start_matches('0'))
                .filter(|d| !d.is_empty())
                .unwrap_or("0")
                .to_string();
            let rel = if self.image_root.join("train2014").is_dir() {
                format!("train2014/{img}")
            } else {
                img.clone()
            };
            let object = RefObject {
                ref_id: i as i64,
                ann_id: -1,
                category_id: -1,
                bbox,
            };
            c.add(
                &file,
                (&dataset, "pth", &split),
                &image_id,
                &rel,
                object,
                vec![(i as i64, phrase)],
            );
        }
        Ok(())
    }
}

impl Source for RefcocoSource {
    type Sample = RefSample;

    fn read(&self) -> Result<SourceOutput<RefSample>> {
        let mut files = Vec::new();
        let mut instances = Instances::new();
        let mut pickles = Vec::new();
        let mut pths = Vec::new();
        for path in &self.annotation_files {
            let name = file_label(path);
            if name.ends_with(".pth") {
                read_annotation_file(path, &mut files)?;
                let ckpt = crate::pickle::torch::TorchCheckpoint::open(path)?;
                pths.push((path.clone(), ckpt.root));
                continue;
            }
            let bytes = read_annotation_file(path, &mut files)?;
            if name.ends_with(".json") {
                read_instances(path, &bytes, &mut instances)?;
            } else {
                let root = crate::pickle::load_plain(&bytes).map_err(|e| Error::Annotation {
                    path: path.clone(),
                    position: "pickle".into(),
                    message: e.to_string(),
                })?;
                pickles.push((path.clone(), root));
            }
        }
        if !pickles.is_empty() && instances.is_empty() {
            return Err(Error::input_with_hint(
                "refs pickles need the boxes from instances.json",
                "pass the instances.json from the same folder in --annotations",
            ));
        }
        let mut c = RefCollector::default();
        for (path, root) in &pickles {
            self.read_refs(path, root, &instances, &mut c)?;
        }
        for (path, root) in &pths {
            self.read_pth(path, root, &mut c)?;
        }

        Ok(SourceOutput {
            samples: c.samples,
            rejects: c.rejects,
            files,
        })
    }
}
