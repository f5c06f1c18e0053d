//! Finding datasets under data roots by their manifests.

use std::path::{Path, PathBuf};

use super::Manifest;
use super::manifest::MANIFEST_FILE;
use crate::error::{Error, Result};

/// How deep below a root manifests are looked for (`ROOT/a/b/c/manifest.json` is found).
pub const MAX_DEPTH: usize = 4;

/// A dataset found on disk.
#[derive(Debug, Clone)]
pub struct DatasetEntry {
    /// SQL table name: the manifest's name, lower-cased, non-alphanumerics as `_`.
    pub table: String,
    /// The dataset directory.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
}

/// A table name from a dataset name: `coco-karpathy.v2` → `coco_karpathy_v2`.
pub fn table_name(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, 't');
    }
    s
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    if dir.join(MANIFEST_FILE).is_file() {
        out.push(dir.to_path_buf());
        return; // a dataset's own sub-directories hold shards, not datasets
    }
    if depth == 0 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut subdirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    subdirs.sort();
    for d in subdirs {
        walk(&d, depth - 1, out);
    }
}

/// Every dataset under `roots` (a root may itself be a dataset directory), sorted by table name.
/// Two datasets with the same table name are an error: the table would be ambiguous.
pub fn discover_datasets(roots: &[PathBuf]) -> Result<Vec<DatasetEntry>> {
    let mut dirs = Vec::new();
    for root in roots {
        if !root.is_dir() {
            return Err(Error::input_with_hint(
                format!("data root `{}` is not a directory", root.display()),
                "pass --data DIR pointing at a dataset or a folder of datasets",
            ));
        }
        walk(root, MAX_DEPTH, &mut dirs);
    }
    let mut entries: Vec<DatasetEntry> = Vec::new();
    for dir in dirs {
        let manifest = Manifest::read(&dir)?;
        let table = table_name(&manifest.name);
        if let Some(other) = entries.iter().find(|e| e.table == table) {
            if other.dir == dir {
                continue;
            }
            return Err(Error::input_with_hint(
                format!(
                    "two datasets would both be table `{table}`: `{}` and `{}`",
                    other.dir.display(),
                    dir.display()
                ),
                "give one of them another name with `mplug ingest ... --name NAME`",
            ));
        }
        entries.push(DatasetEntry {
            table,
            dir,
            manifest,
        });
    }
    entries.sort_by(|a, b| a.table.cmp(&b.table));
    Ok(entries)
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_names_are_sql_identifiers() {
        assert_eq!(
            super::table_name("coco_karpathy_train"),
            "coco_karpathy_train"
        );
        assert_eq!(super::table_name("COCO-2017.v1"), "coco_2017_v1");
        assert_eq!(super::table_name("2017"), "t2017");
    }
}
