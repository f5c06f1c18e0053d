//! One split of an ingested dataset, read in stored order for evaluation.
//!
//! Evaluation reads every row of a split once, in the order the shards hold them (the order the
//! annotations listed them), so results files come out in a defined order and `--limit N` means "the
//! first N items". Each shard is checked against its manifest blake3 before it is read.

use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use parquet::arrow::ProjectionMask;

use crate::error::{Error, Result};
use crate::shards::catalog::discover_datasets;
use crate::shards::reader::{file_blake3, open, unreadable};

/// A dataset split to evaluate.
#[derive(Debug, Clone)]
pub struct EvalSplit {
    /// The dataset's manifest name.
    pub dataset: String,
    /// The dataset directory.
    pub dir: PathBuf,
    /// The split evaluated.
    pub split: String,
    /// Rows of the split.
    pub rows: u64,
    shards: Vec<(PathBuf, String)>,
}

impl EvalSplit {
    /// Finds the one dataset with row schema `schema` under `data` (a dataset directory or a folder
    /// of datasets) and checks that it has split `split`; the error lists the splits it has.
    pub fn open(data: &Path, schema: &str, split: &str) -> Result<Self> {
        let all = discover_datasets(&[data.to_path_buf()])?;
        let found: Vec<_> = all.iter().filter(|d| d.manifest.schema == schema).collect();
        let entry = match found.as_slice() {
            [one] => *one,
            [] => {
                let others: Vec<String> = all
                    .iter()
                    .map(|d| format!("{} ({})", d.manifest.name, d.manifest.schema))
                    .collect();
                return Err(Error::input_with_hint(
                    format!(
                        "no `{schema}` dataset under `{}` (found: {})",
                        data.display(),
                        if others.is_empty() {
                            "no datasets".to_string()
                        } else {
                            others.join(", ")
                        }
                    ),
                    "pass --data the directory `mplug ingest` wrote for this task",
                ));
            }
            many => {
                let names: Vec<String> = many.iter().map(|d| d.dir.display().to_string()).collect();
                return Err(Error::input_with_hint(
                    format!(
                        "{} `{schema}` datasets under `{}`: {}",
                        many.len(),
                        data.display(),
                        names.join(", ")
                    ),
                    "pass --data one of them",
                ));
            }
        };
        let shards = entry
            .manifest
            .shards
            .iter()
            .map(|s| (entry.dir.join(&s.path), s.blake3.clone()))
            .collect();
        let mut this = EvalSplit {
            dataset: entry.manifest.name.clone(),
            dir: entry.dir.clone(),
            split: split.to_string(),
            rows: 0,
            shards,
        };
        let counts = this.split_counts()?;
        match counts.get(split) {
            Some(&n) => this.rows = n,
            None => {
                let have: Vec<String> = counts
                    .iter()
                    .map(|(s, n)| format!("{s} ({n} rows)"))
                    .collect();
                return Err(Error::input_with_hint(
                    format!(
                        "dataset `{}` has no split `{split}`; its splits: {}",
                        this.dataset,
                        if have.is_empty() {
                            "none (no rows)".to_string()
                        } else {
                            have.join(", ")
                        }
                    ),
                    "pass --split one of them",
                ));
            }
        }
        Ok(this)
    }

    /// Rows per split, in order of first appearance.
    fn split_counts(&self) -> Result<indexmap::IndexMap<String, u64>> {
        let mut counts = indexmap::IndexMap::new();
        self.read_batches(&["split"], None, &mut |b| {
            let col = split_column(b)?;
            for i in 0..col.len() {
                *counts.entry(col.value(i).to_string()).or_insert(0) += 1;
            }
            Ok(())
        })?;
        Ok(counts)
    }

    /// Calls `f` on the rows of this split (only `columns`, plus `split`), in stored order, in
    /// batches of at most `rows_per_batch` rows.
    pub fn for_each_batch(
        &self,
        columns: &[&str],
        rows_per_batch: usize,
        f: &mut dyn FnMut(&RecordBatch) -> Result<()>,
    ) -> Result<()> {
        let mut cols: Vec<&str> = columns.to_vec();
        if !cols.contains(&"split") {
            cols.push("split");
        }
        let split = self.split.clone();
        self.read_batches(&cols, Some(rows_per_batch), &mut |b| {
            let col = split_column(b)?;
            let keep: BooleanArray = (0..col.len())
                .map(|i| Some(col.value(i) == split))
                .collect();
            let b = arrow::compute::filter_record_batch(b, &keep)?;
            if b.num_rows() == 0 {
                return Ok(());
            }
            f(&b)
        })
    }

    /// Entries of list column `column` over the split's rows (questions, expressions: the items a
    /// progress bar counts).
    pub fn count_list_items(&self, column: &str) -> Result<u64> {
        let mut n = 0u64;
        self.for_each_batch(&[column], 4096, &mut |b| {
            let l = b
                .column_by_name(column)
                .and_then(|c| c.as_list_opt::<i32>())
                .ok_or_else(|| Error::format(format!("shard lacks list column `{column}`")))?;
            n += (0..l.len()).map(|i| l.value(i).len() as u64).sum::<u64>();
            Ok(())
        })?;
        Ok(n)
    }

    fn read_batches(
        &self,
        columns: &[&str],
        rows_per_batch: Option<usize>,
        f: &mut dyn FnMut(&RecordBatch) -> Result<()>,
    ) -> Result<()> {
        for (path, want) in &self.shards {
            let got = file_blake3(path).map_err(|e| unreadable(path, &self.dataset, e))?;
            if &got != want {
                return Err(Error::format(format!(
                    "shard `{}` of dataset `{}` does not match its manifest (blake3 {got}, manifest \
                     {want}); refusing to read it (run `mplug verify`)",
                    path.display(),
                    self.dataset
                )));
            }
            let builder = open(path, &self.dataset)?;
            let mask = ProjectionMask::columns(builder.parquet_schema(), columns.iter().copied());
            let mut builder = builder.with_projection(mask);
            if let Some(n) = rows_per_batch {
                builder = builder.with_batch_size(n.max(1));
            }
            let reader = builder
                .build()
                .map_err(|e| unreadable(path, &self.dataset, e))?;
            for batch in reader {
                let batch = batch.map_err(|e| unreadable(path, &self.dataset, e))?;
                f(&batch)?;
            }
        }
        Ok(())
    }
}

fn split_column(b: &RecordBatch) -> Result<&arrow::array::StringArray> {
    b.column_by_name("split")
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or_else(|| Error::format("shard lacks a utf8 `split` column"))
}
