//! A frozen sample list (`mplug select` writes it from a query; the loader, `mplug show` and the
//! leakage check read it): exact (dataset, shard, row) positions, pinned to each dataset's
//! `dataset_blake3`, hashed over its contents so the same query on the same data gives a
//! byte-identical file.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::commit::write_atomic;
use super::manifest::json_blake3;
use crate::error::{Error, Result};

/// Value of the `format` field.
pub const SAMPLE_LIST_FORMAT: &str = "mplug.sample_list";

/// A dataset a list points into.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListDataset {
    /// Table name.
    pub name: String,
    /// The dataset's `dataset_blake3`: the loader refuses a dataset that changed.
    pub dataset_blake3: String,
}

/// One selected sample.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SampleRef {
    /// Table name.
    pub dataset: String,
    /// Shard path relative to the dataset directory.
    pub shard: String,
    /// Row index inside the shard.
    pub row: u64,
    /// The sample's image id.
    pub image_id: String,
}

/// A frozen sample list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampleList {
    /// `mplug.sample_list`.
    pub format: String,
    /// 1.
    pub format_version: u32,
    /// The query, verbatim.
    pub sql: String,
    /// blake3 of the query text.
    pub sql_blake3: String,
    /// Datasets referenced, by name.
    pub datasets: Vec<ListDataset>,
    /// Number of samples.
    pub count: u64,
    /// The samples, ordered by (dataset, shard, row).
    pub samples: Vec<SampleRef>,
    /// blake3 over every field above.
    pub list_blake3: String,
}

#[derive(Serialize)]
struct Hashed<'a> {
    format_version: u32,
    sql: &'a str,
    datasets: &'a [ListDataset],
    samples: &'a [SampleRef],
}

impl SampleList {
    /// A list of `samples` (sorted by the caller) selected by `sql` from `datasets`, with its hashes.
    pub fn new(sql: &str, datasets: Vec<ListDataset>, samples: Vec<SampleRef>) -> Self {
        let list_blake3 = json_blake3(&Hashed {
            format_version: 1,
            sql,
            datasets: &datasets,
            samples: &samples,
        });
        SampleList {
            format: SAMPLE_LIST_FORMAT.to_string(),
            format_version: 1,
            sql: sql.to_string(),
            sql_blake3: blake3::hash(sql.as_bytes()).to_hex().to_string(),
            datasets,
            count: samples.len() as u64,
            samples,
            list_blake3,
        }
    }
}

/// Reads a sample list; anything else is an input error naming the file.
pub fn read_list(path: &Path) -> Result<SampleList> {
    let bytes = fs_err::read(path)?;
    let list: SampleList = serde_json::from_slice(&bytes).map_err(|e| {
        Error::input_caused(format!("`{}` is not a sample list", path.display()), e)
    })?;
    if list.format != SAMPLE_LIST_FORMAT {
        return Err(Error::input(format!(
            "`{}` is not a sample list",
            path.display()
        )));
    }
    Ok(list)
}

/// Writes the list as pretty JSON, atomically.
pub fn write_list(list: &SampleList, path: &Path) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(list)
        .map_err(|e| Error::internal_caused("JSON serialisation failed", e))?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}
