//! The dataset manifest: what was ingested, how, from what, into which shards, and what was rejected.
//!
//! `manifest.json` is written last and atomically; its `dataset_blake3` is a hash over everything that
//! determines the dataset's content (see [`Manifest::compute_dataset_hash`]), so a paper can cite one
//! string. Paths are relative to the dataset directory or bare file names, so the manifest is the same
//! on every machine.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The manifest file name inside a dataset directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// Value of the `format` field.
pub const MANIFEST_FORMAT: &str = "mplug.dataset";
/// The manifest version this build writes and reads (`schemas/manifest.v1.schema.json`).
pub const MANIFEST_VERSION: u32 = 1;

/// One Parquet shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardEntry {
    /// Path relative to the dataset directory (`shards/part-00000.parquet`).
    pub path: String,
    /// Rows in the shard.
    pub rows: u64,
    /// File size in bytes.
    pub bytes: u64,
    /// Row groups in the shard.
    pub row_groups: u64,
    /// blake3 (hex) of the file.
    pub blake3: String,
}

/// Where in the pipeline an input was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum RejectStage {
    /// A record in an annotation file (bad field, duplicate id, empty caption, conflicting split).
    Annotation,
    /// The image path (escapes the image root, missing file).
    Path,
    /// The image bytes (empty, not an image, corrupt, too large).
    Decode,
    /// A URL dataset's image could not be downloaded (HTTP status, timeout, not an image).
    Download,
    /// A panic while processing (a bug, recorded instead of crashing the run).
    Internal,
}

/// What a reject removed: a whole image or clip (row), or one caption or question of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectUnit {
    /// An image and all its captions.
    Image,
    /// One caption; the image may still be written with its other captions.
    Caption,
    /// A video clip and all its texts.
    Clip,
    /// One question (with its answer) of a clip or image.
    Question,
    /// One referred object (box) with its expressions (grounding).
    Ref,
    /// One statement with its label (NLVR2, SNLI-VE).
    Statement,
}

/// An input that did not make it into the shards, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectRecord {
    /// The annotation file (file name) or image path (relative) concerned.
    pub source: String,
    /// The sample: image id, or `image_id#caption_index` for a caption.
    pub sample_id: String,
    /// Pipeline stage that rejected it.
    pub stage: RejectStage,
    /// Whether an image or a caption was dropped.
    pub unit: RejectUnit,
    /// Human-readable reason.
    pub reason: String,
}

impl std::fmt::Display for RejectRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.sample_id, self.source, self.reason)
    }
}

/// One input file (annotation file), by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceFile {
    /// File name (no directory: directories differ between machines).
    pub name: String,
    /// Size in bytes.
    pub bytes: u64,
    /// blake3 (hex) of the file.
    pub blake3: String,
}

/// The image files read, summarised (each one's hash is in the shards' `source_blake3` column).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageFilesSummary {
    /// Files read successfully.
    pub files: u64,
    /// Their total size.
    pub bytes: u64,
    /// blake3 over `relative_path \0 file_blake3 \n` for every file read, in ingest order.
    pub blake3: String,
}

/// Everything read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sources {
    /// Annotation files in the order given.
    pub annotations: Vec<SourceFile>,
    /// Image files.
    pub images: ImageFilesSummary,
}

/// The vocabulary used for token ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VocabInfo {
    /// File name.
    pub name: String,
    /// Number of entries.
    pub entries: u64,
    /// blake3 (hex) of the file.
    pub blake3: String,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// Counts. The JSON keys keep their format-1 names (`images_*`, `captions_*`), so every manifest
/// written so far still reads and hashes the same; the Rust names say what they count.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Totals {
    /// Distinct samples (images, image pairs or clips) named by the annotations (`images_seen`).
    #[serde(rename = "images_seen")]
    pub samples_seen: u64,
    /// Rows written, one per sample (`images_written`).
    #[serde(rename = "images_written")]
    pub samples_written: u64,
    /// Samples rejected whole (`images_rejected`).
    #[serde(rename = "images_rejected")]
    pub samples_rejected: u64,
    /// Texts written: captions, referring expressions (grounding) or statements (NLVR2/SNLI-VE)
    /// (`captions_written`).
    #[serde(rename = "captions_written")]
    pub texts_written: u64,
    /// Texts (captions, grounding objects and expressions, statements) rejected; the sample may
    /// still be written with its other texts (`captions_rejected`).
    #[serde(rename = "captions_rejected")]
    pub texts_rejected: u64,
    /// Questions written (QA datasets; absent when 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub questions_written: u64,
    /// Questions rejected (absent when 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub questions_rejected: u64,
    /// Shard files.
    pub shards: u64,
    /// Bytes in all shards.
    pub shard_bytes: u64,
}

/// The tool that wrote the dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolInfo {
    /// `mplug`.
    pub name: String,
    /// Crate version.
    pub version: String,
}

impl ToolInfo {
    /// This build.
    pub fn current() -> Self {
        Self {
            name: "mplug".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always `mplug.dataset`.
    pub format: String,
    /// Manifest version.
    pub format_version: u32,
    /// Dataset name (the table name in `mplug sql`).
    pub name: String,
    /// Row schema id, e.g. `image_text.v1` (see `schemas/`).
    pub schema: String,
    /// Writer.
    pub tool: ToolInfo,
    /// The full resolved pipeline config (pipeline file + command-line overrides).
    pub pipeline: serde_json::Value,
    /// blake3 of the canonical JSON of `pipeline`.
    pub pipeline_blake3: String,
    /// Vocabulary, when captions are tokenised.
    pub vocab: Option<VocabInfo>,
    /// Inputs.
    pub sources: Sources,
    /// Output shards in order.
    pub shards: Vec<ShardEntry>,
    /// Rejected inputs, in input order.
    pub rejects: Vec<RejectRecord>,
    /// Counts.
    pub totals: Totals,
    /// blake3 over the content-determining fields (see [`Manifest::compute_dataset_hash`]).
    pub dataset_blake3: String,
    /// The rows in order, independent of where shards were cut (`shards::rows_hash`): a dataset
    /// ingested on one machine and the merge of its `--part`s have the same value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_blake3: Option<String>,
    /// Which part of a split ingest this is (`mplug ingest … --part I/N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<PartInfo>,
    /// A merged dataset (`mplug merge`): the `dataset_blake3` of each part, in part order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_parts: Option<Vec<String>>,
}

/// One part of an ingest split across machines: the samples `first..end` of the `samples` the
/// annotations name (in their order), a contiguous range, so that concatenating the parts' rows in
/// part order gives the one-machine rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartInfo {
    /// I (0-based).
    pub index: u64,
    /// N.
    pub count: u64,
    /// Samples the annotations name (all parts).
    pub samples: u64,
    /// This part's first sample.
    pub first: u64,
    /// One past its last.
    pub end: u64,
}

impl PartInfo {
    /// Part `index` of `count` over `samples`: ⌊i·S/N⌋ .. ⌊(i+1)·S/N⌋.
    pub fn new(index: u64, count: u64, samples: u64) -> Self {
        let at = |i: u64| ((i as u128 * samples as u128) / count.max(1) as u128) as u64;
        PartInfo {
            index,
            count,
            samples,
            first: at(index),
            end: at(index + 1),
        }
    }
}

/// The fields the dataset hash covers, in a fixed order.
#[derive(Serialize)]
struct HashedContent<'a> {
    format_version: u32,
    schema: &'a str,
    pipeline_blake3: &'a str,
    vocab: &'a Option<VocabInfo>,
    sources: &'a Sources,
    shards: &'a [ShardEntry],
    rejects: &'a [RejectRecord],
    totals: &'a Totals,
}

/// blake3 (hex) of a value's compact JSON (serde_json keeps struct field order and `Value` maps sorted,
/// so this is canonical for our types).
pub fn json_blake3<T: Serialize>(value: &T) -> String {
    match serde_json::to_vec(value) {
        Ok(bytes) => blake3::hash(&bytes).to_hex().to_string(),
        Err(e) => unreachable!("serialising plain data cannot fail: {e}"),
    }
}

impl Manifest {
    /// The dataset hash: blake3 over the format version, schema, pipeline hash, vocab, sources, shards
    /// (with their hashes), rejects and totals. The dataset name and the tool version are left out:
    /// they label the dataset, they do not change its content.
    pub fn compute_dataset_hash(&self) -> String {
        json_blake3(&HashedContent {
            format_version: self.format_version,
            schema: &self.schema,
            pipeline_blake3: &self.pipeline_blake3,
            vocab: &self.vocab,
            sources: &self.sources,
            shards: &self.shards,
            rejects: &self.rejects,
            totals: &self.totals,
        })
    }

    /// Pretty JSON with a trailing newline: the exact bytes of `manifest.json`.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        let mut bytes = match serde_json::to_vec_pretty(self) {
            Ok(b) => b,
            Err(e) => unreachable!("serialising plain data cannot fail: {e}"),
        };
        bytes.push(b'\n');
        bytes
    }

    /// Reads and checks `dir/manifest.json` (format and version).
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(MANIFEST_FILE);
        let bytes = fs_err::read(&path).map_err(|e| {
            Error::input_caused(
                format!("`{}` is not a complete mplug dataset", dir.display()),
                e,
            )
            .with_hint(
                "a dataset directory holds manifest.json, written when `mplug ingest` finishes",
            )
        })?;
        let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
            Error::format_caused(format!("`{}` is not a valid manifest", path.display()), e)
        })?;
        if manifest.format != MANIFEST_FORMAT || manifest.format_version != MANIFEST_VERSION {
            return Err(Error::format(format!(
                "`{}` has format {} v{}; this mplug reads {MANIFEST_FORMAT} v{MANIFEST_VERSION}",
                path.display(),
                manifest.format,
                manifest.format_version
            )));
        }
        Ok(manifest)
    }
}
