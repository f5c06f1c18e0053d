//! What every video source shares: the sample type, grouping records per clip, and finding each
//! clip's file under `--videos`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use crate::error::{Error, Result};
use crate::shards::manifest::{RejectRecord, RejectStage, RejectUnit};

/// One question with its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QaItem {
    /// The annotation's id (or line index).
    pub id: i64,
    /// Raw question.
    pub question: String,
    /// Raw answer.
    pub answer: String,
}

/// A clip with its texts, ready for the video stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoSample {
    /// Clip id as the annotations give it.
    pub video_id: String,
    /// Split.
    pub split: String,
    /// Path relative to the video root.
    pub source_path: String,
    /// Captions, raw.
    pub captions: Vec<String>,
    /// Questions with answers.
    pub qa: Vec<QaItem>,
}

/// Extensions taken as video files.
pub const VIDEO_EXTENSIONS: &[&str] = &[
    "mp4", "webm", "avi", "mkv", "mov", "m4v", "flv", "3gp", "mpg", "mpeg", "ogv", "wmv",
];

/// The video files under a root, by file stem (`video7010` → `all/video7010.mp4`). Built once by a
/// recursive scan in sorted order; when two files share a stem the first in path order wins.
#[derive(Debug, Default)]
pub struct VideoIndex {
    by_stem: HashMap<String, String>,
}

impl VideoIndex {
    /// Scans `root` recursively.
    pub fn scan(root: &Path) -> Result<Self> {
        let mut found = BTreeMap::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            let entries = fs_err::read_dir(&dir).map_err(|e| {
                Error::input_caused("cannot list videos", e).with_hint("pass --videos DIR")
            })?;
            for entry in entries {
                let entry = entry?;
                let path = entry.path();
                // file_type() does not follow links: a directory link is never walked (a loop, a
                // link to `/`, a folder outside the root), and a link counts only when it points
                // inside the root at something that is not a directory. Other non-regular files
                // (a FIFO named like a clip) are indexed so that opening them is a reject that
                // says what they are, not a "missing" clip.
                let t = entry.file_type()?;
                if t.is_dir() {
                    stack.push(path);
                    continue;
                }
                if t.is_symlink() {
                    let inside = std::fs::canonicalize(&path)
                        .is_ok_and(|target| target.starts_with(root) && !target.is_dir());
                    if !inside {
                        continue;
                    }
                }
                let ext = path
                    .extension()
                    .and_then(|e| e.to_str())
                    .map(str::to_lowercase)
                    .unwrap_or_default();
                if !VIDEO_EXTENSIONS.contains(&ext.as_str()) {
                    continue;
                }
                if let Ok(rel) = path.strip_prefix(root) {
                    let rel: Vec<String> = rel
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                        .collect();
                    found.insert(rel.join("/"), ());
                }
            }
        }
        let mut by_stem = HashMap::new();
        for rel in found.into_keys() {
            let stem = Path::new(&rel)
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_string();
            by_stem.entry(stem).or_insert(rel);
        }
        Ok(VideoIndex { by_stem })
    }

    /// The file of a clip, by stem.
    pub fn find(&self, stem: &str) -> Option<&str> {
        self.by_stem.get(stem).map(String::as_str)
    }

    /// Number of video files found.
    pub fn len(&self) -> usize {
        self.by_stem.len()
    }

    /// Whether no video file was found.
    pub fn is_empty(&self) -> bool {
        self.by_stem.is_empty()
    }
}

/// Groups caption and QA records into one sample per (clip, split).
#[derive(Debug, Default)]
pub struct VideoCollector {
    samples: Vec<VideoSample>,
    by_key: HashMap<(String, String), usize>,
    missing: HashSet<(String, String)>,
    rejects: Vec<RejectRecord>,
}

impl VideoCollector {
    /// A new collector.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a rejected annotation record.
    pub fn reject(
        &mut self,
        source: &str,
        sample_id: impl Into<String>,
        unit: RejectUnit,
        reason: impl Into<String>,
    ) {
        self.rejects.push(RejectRecord {
            source: source.to_string(),
            sample_id: sample_id.into(),
            stage: RejectStage::Annotation,
            unit,
            reason: reason.into(),
        });
    }

    /// The sample for (`video_id`, `split`), created on first use with the file found by
    /// `file_stem` in `index`; `None` (and one reject per clip) when no file exists.
    pub fn sample(
        &mut self,
        index: &VideoIndex,
        file: &str,
        video_id: &str,
        file_stem: &str,
        split: &str,
    ) -> Option<&mut VideoSample> {
        let key = (video_id.to_string(), split.to_string());
        if let Some(&i) = self.by_key.get(&key) {
            return Some(&mut self.samples[i]);
        }
        let Some(path) = index.find(file_stem) else {
            if self.missing.insert(key) {
                self.rejects.push(RejectRecord {
                    source: file.to_string(),
                    sample_id: video_id.to_string(),
                    stage: RejectStage::Path,
                    unit: RejectUnit::Clip,
                    reason: format!("missing video file (no `{file_stem}.*` under --videos)"),
                });
            }
            return None;
        };
        self.samples.push(VideoSample {
            video_id: video_id.to_string(),
            split: split.to_string(),
            source_path: path.to_string(),
            captions: Vec::new(),
            qa: Vec::new(),
        });
        self.by_key.insert(key, self.samples.len() - 1);
        self.samples.last_mut()
    }

    /// Samples in first-appearance order and the rejects.
    pub fn finish(self) -> (Vec<VideoSample>, Vec<RejectRecord>) {
        (self.samples, self.rejects)
    }
}

/// Which annotation family a video source reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoDataset {
    /// MSRVTT captions (videodatainfo, JSFUSION csv, BLIP jsonl) and MSRVTT-QA.
    Msrvtt,
    /// MSVD-QA (+ youtube_mapping.txt).
    MsvdQa,
    /// VATEX.
    Vatex,
}

/// Reads a video dataset's annotation files and finds each clip under the video root.
#[derive(Debug, Clone)]
pub struct VideoTextSource {
    /// Which format family.
    pub dataset: VideoDataset,
    /// Annotation files, in order.
    pub annotation_files: Vec<std::path::PathBuf>,
    /// The (canonical) video root.
    pub video_root: std::path::PathBuf,
    /// MSVD-QA's youtube_mapping.txt.
    pub mapping: Option<std::path::PathBuf>,
    /// Put every clip in this split.
    pub split_override: Option<String>,
}

impl super::Source for VideoTextSource {
    type Sample = VideoSample;

    fn read(&self) -> Result<super::SourceOutput<VideoSample>> {
        let index = VideoIndex::scan(&self.video_root)?;
        let mut files = Vec::new();
        let mut c = VideoCollector::new();
        let split = self.split_override.as_deref();
        let mapping = match (&self.mapping, self.dataset) {
            (Some(p), VideoDataset::MsvdQa) => {
                let bytes = super::coco::read_annotation_file(p, &mut files)?;
                super::msvd_qa::parse_mapping(p, &bytes)?
            }
            _ => HashMap::new(),
        };
        for path in &self.annotation_files {
            let bytes = super::coco::read_annotation_file(path, &mut files)?;
            match self.dataset {
                VideoDataset::Msrvtt => {
                    super::msrvtt::read_msrvtt_file(path, &bytes, &index, &mut c, split)?
                }
                VideoDataset::MsvdQa => {
                    super::msvd_qa::read_msvd_file(path, &bytes, &mapping, &index, &mut c, split)?
                }
                VideoDataset::Vatex => {
                    super::vatex::read_vatex_file(path, &bytes, &index, &mut c, split)?
                }
            }
        }
        let (samples, rejects) = c.finish();
        Ok(super::SourceOutput {
            samples,
            rejects,
            files,
        })
    }
}
