//! Flickr30K captions: the release's `results_20130124.token` (`1000092795.jpg#0<TAB>caption`, five
//! lines per image) and the json files retrieval code uses (Karpathy `dataset_flickr30k.json`, ALBEF
//! `flickr30k_{train,val,test}.json`), which share the COCO readers' layouts.

use std::path::PathBuf;

use serde_json::Value;

use super::coco::{CocoSource, file_label, read_annotation_file};
use super::collect::CaptionCollector;
use super::{CaptionSample, Source, SourceOutput};
use crate::error::Result;

/// Reads Flickr30K caption files.
#[derive(Debug, Clone)]
pub struct FlickrSource {
    /// Annotation files: `.token` or json.
    pub annotation_files: Vec<PathBuf>,
    /// The image root (`flickr30k-images/` for the token file and Karpathy; its parent for ALBEF).
    pub image_root: PathBuf,
    /// Forces the split (the token file has none: `train` otherwise).
    pub split_override: Option<String>,
}

impl Source for FlickrSource {
    type Sample = CaptionSample;

    fn read(&self) -> Result<SourceOutput<CaptionSample>> {
        let json = CocoSource {
            annotation_files: Vec::new(),
            image_root: self.image_root.clone(),
            split_override: self.split_override.clone(),
        };
        let mut c = CaptionCollector::new();
        let mut files = Vec::new();
        for path in &self.annotation_files {
            let bytes = read_annotation_file(path, &mut files)?;
            if path.extension().is_some_and(|e| e == "json") {
                json.read_file(path, &bytes, &mut c)?;
                continue;
            }
            let text = String::from_utf8_lossy(&bytes);
            let file = file_label(path);
            let split = self.split_override.as_deref().unwrap_or("train");
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let line_ref = format!("line {}", i + 1);
                let Some((key, caption)) = line.split_once('\t') else {
                    c.reject(&file, line_ref, "expected `<image>#<n><TAB><caption>`");
                    continue;
                };
                let image = key.rsplit_once('#').map_or(key, |(img, _)| img).trim();
                let id = image.strip_suffix(".jpg").unwrap_or(image).to_string();
                if let Some(idx) = c.add_image(&file, image, Some(id), split) {
                    c.add_caption(&file, idx, &line_ref, &Value::String(caption.to_string()));
                }
            }
        }
        let (samples, rejects) = c.finish();
        Ok(SourceOutput {
            samples,
            rejects,
            files,
        })
    }
}
