//! URL + caption lists: CC3M (`caption<TAB>url`, also the image-labels file with three more
//! columns), CC12M (`url<TAB>caption`), SBU (`sbu-captions-all.json` parallel arrays, or the 2011
//! release's `…_urls.txt` + `…_captions.txt` line-aligned pair) and img2dataset-style tsv with a
//! `url`/`caption` header.
//!
//! Lines are split on the tab character only (no CSV quoting: CC3M captions contain `"`). Which
//! column is the URL is decided per line by the `http(s)://` prefix, so CC3M and CC12M need no flag.
//! Images are looked up on disk by URL ([`super::url_images`]); the image id is the URL.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::coco::{file_label, split_from_file_name};
use super::collect::CaptionCollector;
use super::json::{parse_json, structure_error, type_name};
use super::url_images::{UrlImage, UrlImageIndex};
use super::{CaptionSample, Source, SourceOutput};
use crate::error::{Error, Result};
use crate::shards::manifest::{RejectRecord, RejectStage, RejectUnit, SourceFile};

/// One listed (url, caption).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebRecord {
    /// Annotation file name.
    pub file: String,
    /// 1-based line (or array index + 1) in that file.
    pub line: usize,
    /// Image URL.
    pub url: String,
    /// Caption.
    pub caption: String,
    /// Split.
    pub split: String,
}

/// URL lists read from files, with their rejects.
#[derive(Debug, Default)]
pub struct WebLists {
    /// Valid records in file order.
    pub records: Vec<WebRecord>,
    /// Bad lines.
    pub rejects: Vec<RejectRecord>,
    /// The files read.
    pub files: Vec<SourceFile>,
}

fn is_url(s: &str) -> bool {
    let s = s.trim();
    s.starts_with("http://") || s.starts_with("https://")
}

/// The split of a URL-list file: CC3M's `Train_…`/`Validation_…` by name; anything else `train`.
fn list_split(path: &Path, split_override: Option<&str>) -> String {
    split_override.map_or_else(|| split_from_file_name(path), str::to_string)
}

/// Reads every list file. SBU's txt pair is recognised by `urls`/`captions` in the file names.
pub fn read_web_lists(files: &[PathBuf], split_override: Option<&str>) -> Result<WebLists> {
    let mut out = WebLists::default();
    let mut sbu_urls: Option<(PathBuf, Vec<String>)> = None;
    let mut sbu_caps: Option<(PathBuf, Vec<String>)> = None;
    for path in files {
        let bytes = super::coco::read_annotation_file(path, &mut out.files)?;
        let name = file_label(path).to_lowercase();
        let split = list_split(path, split_override);
        if name.ends_with(".json") {
            read_sbu_json(path, &bytes, &split, &mut out)?;
            continue;
        }
        let text = String::from_utf8(bytes).map_err(|e| Error::Annotation {
            path: path.clone(),
            position: format!("byte {}", e.utf8_error().valid_up_to()),
            message: "not UTF-8 text".to_string(),
        })?;
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if name.ends_with(".txt") && name.contains("url") {
            sbu_urls = Some((path.clone(), lines));
        } else if name.ends_with(".txt") && name.contains("caption") {
            sbu_caps = Some((path.clone(), lines));
        } else {
            read_tsv(path, &lines, &split, &mut out);
        }
    }
    match (sbu_urls, sbu_caps) {
        (Some((up, urls)), Some((_, caps))) => {
            if urls.len() != caps.len() {
                return Err(structure_error(
                    &up,
                    "$",
                    format!(
                        "SBU url and caption files are not aligned: {} urls, {} captions",
                        urls.len(),
                        caps.len()
                    ),
                ));
            }
            let split = list_split(&up, split_override);
            for (i, (u, c)) in urls.iter().zip(&caps).enumerate() {
                push_record(&mut out, &file_label(&up), i + 1, u, c, &split);
            }
        }
        (Some((p, _)), None) | (None, Some((p, _))) => {
            return Err(Error::input_with_hint(
                format!("`{}` is one half of SBU's txt release", file_label(&p)),
                "pass both SBU_captioned_photo_dataset_urls.txt and …_captions.txt",
            ));
        }
        (None, None) => {}
    }
    Ok(out)
}

fn push_record(out: &mut WebLists, file: &str, line: usize, url: &str, caption: &str, split: &str) {
    let (url, caption) = (url.trim(), caption.trim());
    let reject = |reason: String| RejectRecord {
        source: file.to_string(),
        sample_id: format!("line {line}"),
        stage: RejectStage::Annotation,
        unit: RejectUnit::Image,
        reason,
    };
    if !is_url(url) {
        out.rejects
            .push(reject(format!("no http(s) URL in the record: `{url}`")));
    } else if caption.is_empty() {
        out.rejects.push(reject("empty caption".to_string()));
    } else {
        out.records.push(WebRecord {
            file: file.to_string(),
            line,
            url: url.to_string(),
            caption: caption.to_string(),
            split: split.to_string(),
        });
    }
}

fn read_tsv(path: &Path, lines: &[String], split: &str, out: &mut WebLists) {
    let file = file_label(path);
    for (i, line) in lines.iter().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        if i == 0 && cols.iter().any(|c| c.trim() == "url") && !cols.iter().any(|c| is_url(c)) {
            continue; // img2dataset-style header `caption<TAB>url`
        }
        match cols.as_slice() {
            [a, b, ..] if is_url(b) => push_record(out, &file, i + 1, b, a, split),
            [a, b, ..] => push_record(out, &file, i + 1, a, b, split),
            _ => out.rejects.push(RejectRecord {
                source: file.clone(),
                sample_id: format!("line {}", i + 1),
                stage: RejectStage::Annotation,
                unit: RejectUnit::Image,
                reason: "expected two tab-separated columns (caption and URL)".to_string(),
            }),
        }
    }
}

fn read_sbu_json(path: &Path, bytes: &[u8], split: &str, out: &mut WebLists) -> Result<()> {
    let v = parse_json(path, bytes)?;
    let array = |key: &str| -> Result<&Vec<Value>> {
        v.get(key).and_then(Value::as_array).ok_or_else(|| {
            structure_error(
                path,
                &format!("$.{key}"),
                format!(
                    "expected an array (SBU sbu-captions-all.json), found {}",
                    v.get(key).map_or("nothing", type_name)
                ),
            )
        })
    };
    let (urls, caps) = (array("image_urls")?, array("captions")?);
    if urls.len() != caps.len() {
        return Err(structure_error(
            path,
            "$",
            format!(
                "image_urls ({}) and captions ({}) differ in length",
                urls.len(),
                caps.len()
            ),
        ));
    }
    let file = file_label(path);
    for (i, (u, c)) in urls.iter().zip(caps).enumerate() {
        match (u.as_str(), c.as_str()) {
            (Some(u), Some(c)) => push_record(out, &file, i + 1, u, c, split),
            _ => out.rejects.push(RejectRecord {
                source: file.clone(),
                sample_id: format!("index {i}"),
                stage: RejectStage::Annotation,
                unit: RejectUnit::Image,
                reason: format!(
                    "url is {} and caption is {}; both must be strings",
                    type_name(u),
                    type_name(c)
                ),
            }),
        }
    }
    Ok(())
}

/// A URL caption dataset over a local image folder (downloaded by mplug or img2dataset).
#[derive(Debug, Clone)]
pub struct WebCaptionSource {
    /// The list files.
    pub annotation_files: Vec<PathBuf>,
    /// The image folder.
    pub image_root: PathBuf,
    /// Forces every sample's split.
    pub split_override: Option<String>,
}

impl Source for WebCaptionSource {
    type Sample = CaptionSample;

    fn read(&self) -> Result<SourceOutput<CaptionSample>> {
        let lists = read_web_lists(&self.annotation_files, self.split_override.as_deref())?;
        let index = UrlImageIndex::open(&self.image_root)?;
        let mut files = lists.files;
        let mut outcomes = UrlOutcomes::default();
        let mut c = CaptionCollector::new();
        let mut rejects = lists.rejects;
        let mut reported = HashSet::new();
        for r in &lists.records {
            let image = index.lookup(&r.url);
            outcomes.add(&r.url, &image, &self.image_root);
            let rel = match image {
                UrlImage::Found(rel) => rel,
                UrlImage::Failed(reason) => {
                    push_missing(
                        &mut rejects,
                        &mut reported,
                        r,
                        RejectStage::Download,
                        reason,
                    );
                    continue;
                }
                UrlImage::Missing => {
                    let reason =
                        "image not on disk (not downloaded: run with --download, or point \
                                  --images at the download folder)"
                            .to_string();
                    push_missing(&mut rejects, &mut reported, r, RejectStage::Path, reason);
                    continue;
                }
            };
            if let Some(idx) = c.add_image(&r.file, &rel, Some(r.url.clone()), &r.split) {
                let caption = Value::String(r.caption.clone());
                c.add_caption(&r.file, idx, &format!("line {}", r.line), &caption);
            }
        }
        let (samples, more) = c.finish();
        rejects.extend(more);
        files.push(outcomes.finish());
        Ok(SourceOutput {
            samples,
            rejects,
            files,
        })
    }
}

/// The name of the [`UrlOutcomes`] entry in a manifest's `sources.annotations`.
pub const URL_OUTCOMES: &str = "image folder (outcome per listed URL)";

/// What the image folder held for each listed URL, as an input of the dataset: the file (path and
/// size) or the recorded failure, per distinct URL in list order. Hashing this instead of the
/// append-only download log makes the dataset's identity depend on what was ingested, not on the
/// log's history: a kill and rerun that ends with the same images gives the same hashes, and a
/// rerun that fetched nothing new is "already up to date".
#[derive(Default)]
struct UrlOutcomes {
    seen: HashSet<String>,
    hasher: blake3::Hasher,
    bytes: u64,
}

impl UrlOutcomes {
    fn add(&mut self, url: &str, image: &UrlImage, root: &std::path::Path) {
        if !self.seen.insert(url.to_string()) {
            return;
        }
        let line = match image {
            UrlImage::Found(rel) => {
                let size = std::fs::metadata(root.join(rel)).map_or(0, |m| m.len());
                format!("{url}\tok\t{rel}\t{size}\n")
            }
            UrlImage::Failed(reason) => format!("{url}\tfailed\t{reason}\n"),
            UrlImage::Missing => format!("{url}\tmissing\n"),
        };
        self.hasher.update(line.as_bytes());
        self.bytes += line.len() as u64;
    }

    fn finish(self) -> SourceFile {
        SourceFile {
            name: URL_OUTCOMES.to_string(),
            bytes: self.bytes,
            blake3: self.hasher.finalize().to_hex().to_string(),
        }
    }
}

fn push_missing(
    rejects: &mut Vec<RejectRecord>,
    reported: &mut HashSet<String>,
    r: &WebRecord,
    stage: RejectStage,
    reason: String,
) {
    // One reject per URL, even when several lines list it.
    if !reported.insert(r.url.clone()) {
        return;
    }
    rejects.push(RejectRecord {
        source: r.file.clone(),
        sample_id: r.url.clone(),
        stage,
        unit: RejectUnit::Image,
        reason,
    });
}
