//! Opening a dataset's shards for reading, with errors that name the file and its dataset.
//!
//! The loader, `leakage` and `select` all read shards; a truncated or corrupt one must be reported as
//! *which* file of *which* dataset (parquet's own message, "Corrupt footer", names neither), so the
//! user can re-ingest or `verify` it.

use std::fs::File;
use std::path::Path;

use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::{BoxError, Error, Result};

/// The error for a shard that cannot be read: names the file and the dataset, keeps the cause.
pub fn unreadable(path: &Path, dataset: &str, cause: impl Into<BoxError>) -> Error {
    Error::format_caused(
        format!(
            "shard `{}` of dataset `{dataset}` is unreadable (run `mplug verify` on the dataset; re-ingest it if a shard is damaged)",
            path.display()
        ),
        cause,
    )
}

/// Opens shard `path` of `dataset` and reads its footer.
pub fn open(path: &Path, dataset: &str) -> Result<ParquetRecordBatchReaderBuilder<File>> {
    let file = File::open(path).map_err(|e| unreadable(path, dataset, e))?;
    ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| unreadable(path, dataset, e))
}

/// blake3 (hex) of a file's bytes, as the manifest records each shard's.
pub fn file_blake3(path: &Path) -> std::io::Result<String> {
    let mut hasher = blake3::Hasher::new();
    let mut f = File::open(path)?;
    std::io::copy(&mut f, &mut hasher)?;
    Ok(hasher.finalize().to_hex().to_string())
}
