//! Cross-dataset leakage: images of one dataset's evaluation split that also appear in a training
//! split (of any dataset, including its own), e.g. COCO Karpathy test images inside Visual Genome or
//! RefCOCO training data.
//!
//! Flow position: reads finished shard sets (only the hash columns, never the pixels). Images are
//! matched by `pixel_dhash` within a Hamming distance (re-encoded or resized copies differ by a bit
//! or two), found without comparing all pairs: split into `d + 1` bit blocks, two hashes within
//! distance `d` agree exactly on at least one block (pigeonhole), so candidates come from block
//! indexes. Uninformative hashes (flat images: almost all bits equal) are matched by `pixel_blake3`
//! only, so blank images do not all "leak" into each other.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use arrow::array::{Array, AsArray};
use parquet::arrow::ProjectionMask;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::shards::catalog::DatasetEntry;
use crate::shards::reader::unreadable;

/// Split names that hold evaluation data (everything else counts as training).
pub const EVAL_SPLITS: &[&str] = &[
    "val", "test", "testA", "testB", "test-dev", "dev", "test1", "test2", "minival",
];

/// Whether `split` is an evaluation split.
pub fn is_eval_split(split: &str) -> bool {
    EVAL_SPLITS.contains(&split)
}

/// One stored image, by its hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageKey {
    /// Dataset name (manifest).
    pub dataset: String,
    /// Split.
    pub split: String,
    /// Row id (`image_id`, or `sample_id` for statement rows).
    pub id: String,
    /// Source path.
    pub source_path: String,
    /// dHash (16 hex digits).
    pub pixel_dhash: String,
    /// blake3 of the decoded pixels.
    #[serde(skip)]
    pub pixel_blake3: String,
}

impl ImageKey {
    fn dhash(&self) -> u64 {
        u64::from_str_radix(&self.pixel_dhash, 16).unwrap_or(0)
    }
}

/// Reads the image keys of a dataset (empty for schemas without `pixel_dhash`, e.g. video).
pub fn read_image_keys(d: &DatasetEntry) -> Result<Vec<ImageKey>> {
    let mut out = Vec::new();
    for shard in &d.manifest.shards {
        let path = d.dir.join(&shard.path);
        read_shard_keys(&path, &d.manifest.name, &mut out)?;
    }
    Ok(out)
}

fn read_shard_keys(path: &Path, dataset: &str, out: &mut Vec<ImageKey>) -> Result<()> {
    let builder = crate::shards::reader::open(path, dataset)?;
    let schema = builder.schema().clone();
    let has = |c: &str| schema.column_with_name(c).is_some();
    if !has("pixel_dhash") {
        return Ok(());
    }
    let id_col = if has("image_id") {
        "image_id"
    } else {
        "sample_id"
    };
    let prefixes: Vec<&str> = if has("right_pixel_dhash") {
        vec!["", "right_"]
    } else {
        vec![""]
    };
    let mut wanted = vec!["split".to_string(), id_col.to_string()];
    for p in &prefixes {
        for c in ["source_path", "pixel_dhash", "pixel_blake3"] {
            wanted.push(format!("{p}{c}"));
        }
    }
    let mask = ProjectionMask::columns(builder.parquet_schema(), wanted.iter().map(String::as_str));
    let reader = builder
        .with_projection(mask)
        .build()
        .map_err(|e| unreadable(path, dataset, e))?;
    for batch in reader {
        let batch = batch.map_err(|e| unreadable(path, dataset, e))?;
        let col = |name: &str| {
            batch
                .column_by_name(name)
                .map(|c| c.as_string::<i32>().clone())
                .ok_or_else(|| Error::format(format!("{}: no column `{name}`", path.display())))
        };
        let (split, id) = (col("split")?, col(id_col)?);
        for p in &prefixes {
            let (src, dh, bl) = (
                col(&format!("{p}source_path"))?,
                col(&format!("{p}pixel_dhash"))?,
                col(&format!("{p}pixel_blake3"))?,
            );
            for i in 0..batch.num_rows() {
                if dh.is_null(i) {
                    continue;
                }
                out.push(ImageKey {
                    dataset: dataset.to_string(),
                    split: split.value(i).to_string(),
                    id: id.value(i).to_string(),
                    source_path: src.value(i).to_string(),
                    pixel_dhash: dh.value(i).to_string(),
                    pixel_blake3: bl.value(i).to_string(),
                });
            }
        }
    }
    Ok(())
}

/// An evaluation image found in a training split.
#[derive(Debug, Clone, Serialize)]
pub struct Leak {
    /// The evaluation image.
    pub eval: ImageKey,
    /// The training copy.
    pub train: ImageKey,
    /// Hamming distance of the dHashes (0 for a `pixel_blake3` match of a flat image).
    pub distance: u32,
}

/// Too few (or too many) set bits: a flat or near-flat image, whose dHash says little.
fn uninformative(h: u64) -> bool {
    let ones = h.count_ones();
    ones <= 2 || ones >= 62
}

/// Bit masks of `blocks` contiguous blocks covering 64 bits.
fn block_masks(blocks: u32) -> Vec<u64> {
    let mut masks = Vec::new();
    let mut start = 0u32;
    for b in 0..blocks {
        let len = (64 - start) / (blocks - b);
        let mask = if len == 64 {
            u64::MAX
        } else {
            ((1u64 << len) - 1) << start
        };
        masks.push(mask);
        start += len;
    }
    masks
}

/// Every (evaluation image, training image) pair within `max_distance` (at most 7), in a
/// deterministic order.
pub fn find_leaks(keys: &[ImageKey], max_distance: u32) -> Vec<Leak> {
    let d = max_distance.min(7);
    let masks = block_masks(d + 1);
    let mut by_block: Vec<HashMap<u64, Vec<usize>>> = vec![HashMap::new(); masks.len()];
    let mut by_blake: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, k) in keys.iter().enumerate() {
        if is_eval_split(&k.split) {
            continue;
        }
        let h = k.dhash();
        if uninformative(h) {
            by_blake.entry(&k.pixel_blake3).or_default().push(i);
        } else {
            for (b, m) in masks.iter().enumerate() {
                by_block[b].entry(h & m).or_default().push(i);
            }
        }
    }
    let mut leaks = Vec::new();
    for e in keys.iter().filter(|k| is_eval_split(&k.split)) {
        let h = e.dhash();
        let mut found: Vec<(usize, u32)> = Vec::new();
        if uninformative(h) {
            for &i in by_blake
                .get(e.pixel_blake3.as_str())
                .map_or(&[][..], Vec::as_slice)
            {
                found.push((i, 0));
            }
        } else {
            for (b, m) in masks.iter().enumerate() {
                for &i in by_block[b].get(&(h & m)).map_or(&[][..], Vec::as_slice) {
                    let dist = (keys[i].dhash() ^ h).count_ones();
                    if dist <= d {
                        found.push((i, dist));
                    }
                }
            }
        }
        found.sort_unstable();
        found.dedup();
        for (i, distance) in found {
            leaks.push(Leak {
                eval: e.clone(),
                train: keys[i].clone(),
                distance,
            });
        }
    }
    leaks.sort_by(|a, b| {
        (
            &a.eval.dataset,
            &a.eval.split,
            &a.eval.id,
            &a.train.dataset,
            &a.train.id,
        )
            .cmp(&(
                &b.eval.dataset,
                &b.eval.split,
                &b.eval.id,
                &b.train.dataset,
                &b.train.id,
            ))
    });
    leaks
}

/// Leaks counted per (eval dataset/split, train dataset/split).
pub fn summarize(leaks: &[Leak]) -> BTreeMap<(String, String), usize> {
    let mut out = BTreeMap::new();
    for l in leaks {
        let key = (
            format!("{}/{}", l.eval.dataset, l.eval.split),
            format!("{}/{}", l.train.dataset, l.train.split),
        );
        *out.entry(key).or_insert(0) += 1;
    }
    out
}

/// The exclusion list a loader honours: the training rows to skip.
#[derive(Debug, Clone, Serialize)]
pub struct ExclusionList {
    /// `mplug.exclusions`.
    pub format: &'static str,
    /// 1.
    pub version: u32,
    /// The Hamming distance used.
    pub max_distance: u32,
    /// Training rows to skip, sorted, one per (dataset, split, id).
    pub entries: Vec<Exclusion>,
}

/// One training row to skip.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Exclusion {
    /// Dataset name.
    pub dataset: String,
    /// Split.
    pub split: String,
    /// Row id (`image_id` / `sample_id`).
    pub id: String,
    /// Source path.
    pub source_path: String,
    /// Why: `<eval dataset>/<split>:<id>` of the first evaluation image it copies.
    pub reason: String,
}

/// The exclusion list of `leaks`.
pub fn exclusion_list(leaks: &[Leak], max_distance: u32) -> ExclusionList {
    let mut seen: BTreeMap<(String, String, String), Exclusion> = BTreeMap::new();
    for l in leaks {
        let key = (
            l.train.dataset.clone(),
            l.train.split.clone(),
            l.train.id.clone(),
        );
        seen.entry(key).or_insert_with(|| Exclusion {
            dataset: l.train.dataset.clone(),
            split: l.train.split.clone(),
            id: l.train.id.clone(),
            source_path: l.train.source_path.clone(),
            reason: format!("{}/{}:{}", l.eval.dataset, l.eval.split, l.eval.id),
        });
    }
    ExclusionList {
        format: "mplug.exclusions",
        version: 1,
        max_distance,
        entries: seen.into_values().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(dataset: &str, split: &str, id: &str, h: u64, blake: &str) -> ImageKey {
        ImageKey {
            dataset: dataset.into(),
            split: split.into(),
            id: id.into(),
            source_path: format!("{id}.jpg"),
            pixel_dhash: format!("{h:016x}"),
            pixel_blake3: blake.into(),
        }
    }

    #[test]
    fn matches_within_distance_across_blocks_and_flat_images_by_blake3() {
        let h = 0x0123_4567_89ab_cdefu64;
        // Flip one bit in each of 3 different 16-bit blocks: distance 3, no block of 4 equal…
        // but with d = 3 there are 4 blocks, so one stays equal (pigeonhole).
        let near = h ^ (1 << 3) ^ (1 << 20) ^ (1 << 40);
        let far = h ^ 0xF0F0;
        let keys = vec![
            key("coco", "test", "1", h, "a"),
            key("vg", "train", "v1", near, "b"),
            key("vg", "train", "v2", far, "c"),
            key("coco", "train", "2", h, "d"),
            key("coco", "val", "3", 0, "flat"),
            key("vg", "train", "v3", 0, "other-flat"),
            key("vg", "train", "v4", 1, "flat"),
        ];
        let leaks = find_leaks(&keys, 3);
        let got: Vec<(String, String, u32)> = leaks
            .iter()
            .map(|l| (l.eval.id.clone(), l.train.id.clone(), l.distance))
            .collect();
        assert_eq!(
            got,
            vec![
                ("1".to_string(), "2".to_string(), 0),
                ("1".to_string(), "v1".to_string(), 3),
                ("3".to_string(), "v4".to_string(), 0),
            ]
        );
        assert!(find_leaks(&keys, 2).iter().all(|l| l.train.id != "v1"));
        let ex = exclusion_list(&leaks, 3);
        assert_eq!(ex.entries.len(), 3);
        assert_eq!(ex.entries[0].dataset, "coco");
        assert_eq!(ex.entries[0].reason, "coco/test:1");
    }

    #[test]
    fn block_masks_cover_64_bits_once() {
        for blocks in 1..=8 {
            let masks = block_masks(blocks);
            assert_eq!(masks.iter().fold(0u64, |a, m| a | m), u64::MAX);
            assert_eq!(masks.iter().map(|m| m.count_ones()).sum::<u32>(), 64);
        }
    }
}
