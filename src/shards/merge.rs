//! `mplug merge`: the parts of an ingest split across machines (`--part I/N`) become one dataset
//! whose rows are the one-machine ingest's, in the same order, with the same `rows_blake3`.
//!
//! Shards are copied (hard-linked when the part sits on the same file system) into the new
//! directory and renumbered in part order; the parts stay valid datasets. Every part is verified
//! first (its shards against its manifest): a part changed after its manifest, missing, given
//! twice, or built from other inputs, settings or mplug version stops the merge naming it.

use std::path::{Path, PathBuf};

use super::commit::write_atomic;
use super::manifest::{ImageFilesSummary, MANIFEST_FILE, Manifest, Totals};
use super::rows_hash::RowsHash;
use super::verify::verify_dataset;
use super::writer::{SHARDS_DIR, shard_file_name};
use crate::error::{Error, Result};

/// What `merge` wrote.
#[derive(Debug)]
pub struct MergeOutcome {
    /// The merged manifest.
    pub manifest: Manifest,
    /// Shards hard-linked (the rest were copied).
    pub linked: usize,
}

/// Merges `parts` (any order) into `out`, a new or empty directory, as dataset `name`.
pub fn merge(parts: &[PathBuf], out: &Path, name: &str) -> Result<MergeOutcome> {
    if parts.is_empty() {
        return Err(Error::input("no part directories given"));
    }
    let mut loaded: Vec<(PathBuf, Manifest)> = Vec::with_capacity(parts.len());
    for dir in parts {
        let m = Manifest::read(dir)?;
        if m.part.is_none() {
            return Err(Error::input_with_hint(
                format!(
                    "`{}` is not a part (its manifest has no `part`)",
                    dir.display()
                ),
                "merge the outputs of `mplug ingest … --part I/N`",
            ));
        }
        loaded.push((dir.clone(), m));
    }
    loaded.sort_by_key(|(_, m)| m.part.map_or(0, |p| p.index));
    let (first_dir, first) = &loaded[0];
    let first_part = first.part.unwrap_or_else(|| unreachable!("checked above"));
    let count = first_part.count;
    // the same ingest: inputs, settings, vocab, schema, writer version, split
    for (dir, m) in &loaded[1..] {
        let p = m.part.unwrap_or_else(|| unreachable!("checked above"));
        let differs = |what: &str| {
            Err(Error::input(format!(
                "`{}` (part {}/{}) was built with other {what} than `{}`",
                dir.display(),
                p.index,
                p.count,
                first_dir.display()
            )))
        };
        if p.count != count || p.samples != first_part.samples {
            return differs("part count or annotations (another --part N or sample count)");
        }
        if m.schema != first.schema {
            return differs("schema");
        }
        if m.pipeline_blake3 != first.pipeline_blake3 || m.vocab != first.vocab {
            return differs("settings (pipeline, flags or vocab)");
        }
        if m.sources.annotations != first.sources.annotations {
            return differs("annotation files");
        }
        if m.tool != first.tool {
            return differs("mplug version");
        }
    }
    for i in 0..count {
        let holders: Vec<&PathBuf> = loaded
            .iter()
            .filter(|(_, m)| m.part.is_some_and(|p| p.index == i))
            .map(|(d, _)| d)
            .collect();
        match holders.as_slice() {
            [] => {
                return Err(Error::input(format!(
                    "part {i}/{count} is missing (given: {})",
                    describe(&loaded)
                )));
            }
            [_] => {}
            [a, b, ..] => {
                return Err(Error::input(format!(
                    "part {i}/{count} is given twice: `{}` and `{}`",
                    a.display(),
                    b.display()
                )));
            }
        }
    }
    for (dir, _) in &loaded {
        let report = verify_dataset(dir)?;
        if let Some(problem) = report.problems.first() {
            return Err(Error::input(format!(
                "`{}` changed after its manifest was written ({} problem(s)); first: {problem}",
                dir.display(),
                report.problems.len()
            )));
        }
    }
    if out.join(MANIFEST_FILE).exists()
        || out
            .join(SHARDS_DIR)
            .read_dir()
            .is_ok_and(|mut d| d.next().is_some())
    {
        return Err(Error::input_with_hint(
            format!("`{}` already holds a dataset", out.display()),
            "merge into a new directory",
        ));
    }
    fs_err::create_dir_all(out.join(SHARDS_DIR))?;
    let mut shards = Vec::new();
    let mut rejects = Vec::new();
    let mut totals = Totals::default();
    let mut rows = RowsHash::default();
    let mut images = ImageFilesSummary::default();
    let mut images_hasher = blake3::Hasher::new();
    let mut linked = 0;
    for (dir, m) in &loaded {
        for s in &m.shards {
            let mut entry = s.clone();
            entry.path = format!("{SHARDS_DIR}/{}", shard_file_name(shards.len()));
            let (from, to) = (dir.join(&s.path), out.join(&entry.path));
            if fs_err::hard_link(&from, &to).is_ok() {
                linked += 1;
            } else {
                let tmp = to.with_extension("parquet.tmp");
                fs_err::copy(&from, &tmp)?;
                fs_err::File::open(&tmp)?.sync_all()?;
                fs_err::rename(&tmp, &to)?;
            }
            shards.push(entry);
        }
        rejects.extend(m.rejects.iter().cloned());
        let t = &m.totals;
        totals.samples_seen += t.samples_seen;
        totals.samples_written += t.samples_written;
        totals.samples_rejected += t.samples_rejected;
        totals.texts_written += t.texts_written;
        totals.texts_rejected += t.texts_rejected;
        totals.questions_written += t.questions_written;
        totals.questions_rejected += t.questions_rejected;
        let part_rows = m.rows_blake3.as_deref().ok_or_else(|| {
            Error::input(format!(
                "`{}` has no rows_blake3 (written by an older mplug)",
                dir.display()
            ))
        })?;
        rows.add(&RowsHash::from_hex(part_rows)?);
        images.files += m.sources.images.files;
        images.bytes += m.sources.images.bytes;
        images_hasher.update(m.sources.images.blake3.as_bytes());
        images_hasher.update(b"\n");
    }
    totals.shards = shards.len() as u64;
    totals.shard_bytes = shards.iter().map(|s| s.bytes).sum();
    // over the parts' image hashes in part order (the per-file stream is not kept in manifests)
    images.blake3 = images_hasher.finalize().to_hex().to_string();
    let mut sources = first.sources.clone();
    sources.images = images;
    let mut manifest = Manifest {
        name: name.to_string(),
        sources,
        shards,
        rejects,
        totals,
        dataset_blake3: String::new(),
        rows_blake3: Some(rows.to_hex()),
        part: None,
        merged_parts: Some(
            loaded
                .iter()
                .map(|(_, m)| m.dataset_blake3.clone())
                .collect(),
        ),
        ..first.clone()
    };
    manifest.dataset_blake3 = manifest.compute_dataset_hash();
    write_atomic(&out.join(MANIFEST_FILE), &manifest.to_json_bytes())?;
    Ok(MergeOutcome { manifest, linked })
}

fn describe(loaded: &[(PathBuf, Manifest)]) -> String {
    loaded
        .iter()
        .map(|(d, m)| {
            let p = m.part.map_or(0, |p| p.index);
            format!("{} = part {p}", d.display())
        })
        .collect::<Vec<_>>()
        .join(", ")
}
