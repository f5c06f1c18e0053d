//! `mplug verify`: recompute every hash and count of a dataset directory and compare with its manifest.

use std::path::Path;

use parquet::file::reader::{FileReader, SerializedFileReader};

use super::manifest::{Manifest, json_blake3};
use super::writer::PIPELINE_BLAKE3_KEY;
use super::writer::SHARDS_DIR;
use crate::error::Result;

/// The result of verifying a dataset.
#[derive(Debug, Default)]
pub struct VerifyReport {
    /// Shards checked.
    pub shards_checked: usize,
    /// Rows counted in the Parquet footers.
    pub rows: u64,
    /// Every mismatch found, each naming its shard or field.
    pub problems: Vec<String>,
}

impl VerifyReport {
    /// True when nothing mismatched.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Verifies `dir` against its manifest. `Err` only when the manifest itself cannot be read.
pub fn verify_dataset(dir: &Path) -> Result<VerifyReport> {
    let manifest = Manifest::read(dir)?;
    let mut report = VerifyReport::default();
    let recomputed = manifest.compute_dataset_hash();
    if recomputed != manifest.dataset_blake3 {
        report.problems.push(format!(
            "manifest: dataset_blake3 is {} but its content hashes to {recomputed} (manifest edited?)",
            manifest.dataset_blake3
        ));
    }
    // dataset_blake3 covers pipeline_blake3, not the settings themselves: check that they still
    // hash to it, so an edited setting (a JPEG quality, a max side) cannot pass as the data's.
    let settings = json_blake3(&manifest.pipeline);
    if settings != manifest.pipeline_blake3 {
        report.problems.push(format!(
            "manifest: `pipeline` (the resolved settings) hashes to {settings}, but the dataset was \
             written with settings hashing to {} (settings edited?)",
            manifest.pipeline_blake3
        ));
    }
    let rows_in_manifest: u64 = manifest.shards.iter().map(|s| s.rows).sum();
    if rows_in_manifest != manifest.totals.samples_written {
        report.problems.push(format!(
            "manifest: shards hold {rows_in_manifest} rows but totals.images_written is {}",
            manifest.totals.samples_written
        ));
    }
    for shard in &manifest.shards {
        report.shards_checked += 1;
        let path = dir.join(&shard.path);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                report
                    .problems
                    .push(format!("{}: cannot read: {e}", shard.path));
                continue;
            }
        };
        if bytes.len() as u64 != shard.bytes {
            report.problems.push(format!(
                "{}: size is {} bytes, manifest says {}",
                shard.path,
                bytes.len(),
                shard.bytes
            ));
        }
        let hash = blake3::hash(&bytes).to_hex().to_string();
        if hash != shard.blake3 {
            report.problems.push(format!(
                "{}: blake3 is {hash}, manifest says {}",
                shard.path, shard.blake3
            ));
        }
        match SerializedFileReader::new(bytes::Bytes::from(bytes)) {
            Ok(reader) => {
                let meta = reader.metadata().file_metadata();
                let rows = meta.num_rows() as u64;
                report.rows += rows;
                if rows != shard.rows {
                    report.problems.push(format!(
                        "{}: footer has {rows} rows, manifest says {}",
                        shard.path, shard.rows
                    ));
                }
                // Each shard records the settings hash it was written with.
                let written_with = meta.key_value_metadata().and_then(|kv| {
                    kv.iter()
                        .find(|e| e.key == PIPELINE_BLAKE3_KEY)
                        .and_then(|e| e.value.clone())
                });
                if written_with.as_deref() != Some(manifest.pipeline_blake3.as_str()) {
                    report.problems.push(format!(
                        "{}: written with settings hashing to {}, manifest says {}",
                        shard.path,
                        written_with.as_deref().unwrap_or("(none)"),
                        manifest.pipeline_blake3
                    ));
                }
                let groups = reader.metadata().num_row_groups() as u64;
                if groups != shard.row_groups {
                    report.problems.push(format!(
                        "{}: {groups} row groups, manifest says {}",
                        shard.path, shard.row_groups
                    ));
                }
            }
            Err(e) => report
                .problems
                .push(format!("{}: not a readable Parquet file: {e}", shard.path)),
        }
    }
    // Shard files the manifest does not list (e.g. copied in by hand) would be read by globbing tools.
    if let Ok(entries) = std::fs::read_dir(dir.join(SHARDS_DIR)) {
        let listed: std::collections::HashSet<&str> =
            manifest.shards.iter().map(|s| s.path.as_str()).collect();
        let mut extra: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().map(|n| format!("{SHARDS_DIR}/{n}")))
            .filter(|p| p.ends_with(".parquet") && !listed.contains(p.as_str()))
            .collect();
        extra.sort();
        for p in extra {
            report
                .problems
                .push(format!("{p}: shard file not listed in the manifest"));
        }
    }
    Ok(report)
}
