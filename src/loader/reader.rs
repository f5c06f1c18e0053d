//! Reading whole row groups (the sequential read unit) and pulling one sample's fields out of them.

use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int32Type;
use parquet::arrow::ProjectionMask;

use super::index::DatasetIndex;
use crate::error::{Error, Result};

/// A decoded row group (Arrow arrays; samples borrow from it).
#[derive(Debug, Clone)]
pub struct RowGroupData {
    /// Index of the row group in the [`DatasetIndex`].
    pub row_group: usize,
    batch: RecordBatch,
}

/// One sample's stored fields.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSample<'a> {
    /// Row id.
    pub image_id: &'a str,
    /// Stored width.
    pub width: u32,
    /// Stored height.
    pub height: u32,
    /// `jpeg` or `raw`.
    pub codec: &'a str,
    /// Pixels.
    pub image: &'a [u8],
}

/// Reads row group `g` of the index (verifying its shard on first touch).
pub fn read_row_group(index: &DatasetIndex, g: usize) -> Result<Arc<RowGroupData>> {
    let rg = &index.row_groups[g];
    index.verify_shard(rg.shard)?;
    let (d, path, _) = &index.shards[rg.shard];
    let dataset = &index.datasets[*d].manifest.name;
    let builder = crate::shards::reader::open(path, dataset)?;
    let unreadable =
        |e: crate::error::BoxError| crate::shards::reader::unreadable(path, dataset, e);
    let mask = ProjectionMask::columns(builder.parquet_schema(), index.kind.columns());
    let reader = builder
        .with_projection(mask)
        .with_row_groups(vec![rg.row_group])
        .with_batch_size(rg.rows.max(1) as usize)
        .build()
        .map_err(|e| unreadable(Box::new(e)))?;
    let batches: Vec<RecordBatch> = reader
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| unreadable(Box::new(e)))?;
    let batch = match batches.len() {
        1 => batches
            .into_iter()
            .next()
            .ok_or_else(|| Error::internal("no batch"))?,
        _ => {
            let schema = batches
                .first()
                .map(|b| b.schema())
                .ok_or_else(|| Error::format(format!("{}: empty row group", path.display())))?;
            arrow::compute::concat_batches(&schema, &batches)?
        }
    };
    if batch.num_rows() != rg.rows as usize {
        return Err(Error::format(format!(
            "{}: row group {} has {} rows, its footer says {}",
            path.display(),
            rg.row_group,
            batch.num_rows(),
            rg.rows
        )));
    }
    Ok(Arc::new(RowGroupData {
        row_group: g,
        batch,
    }))
}

impl RowGroupData {
    /// The row group's columns (the text of a sample is read from them by its kind).
    pub fn batch(&self) -> &RecordBatch {
        &self.batch
    }

    /// The image fields of row `row`.
    pub fn sample(&self, row: usize) -> Result<StoredSample<'_>> {
        self.sample_with_prefix(row, "")
    }

    /// The image fields of row `row` whose columns carry `prefix` (`right_`: an NLVR2 pair's
    /// second image); the id is the row's.
    pub fn sample_with_prefix(&self, row: usize, prefix: &str) -> Result<StoredSample<'_>> {
        let col = |name: &str| {
            let name = format!("{prefix}{name}");
            self.batch
                .column_by_name(&name)
                .ok_or_else(|| Error::format(format!("row group lacks column `{name}`")))
        };
        let id = self
            .batch
            .column_by_name("image_id")
            .or_else(|| self.batch.column_by_name("sample_id"))
            .ok_or_else(|| Error::format("row group lacks column `image_id`"))?;
        Ok(StoredSample {
            image_id: id.as_string::<i32>().value(row),
            width: col("width")?.as_primitive::<Int32Type>().value(row) as u32,
            height: col("height")?.as_primitive::<Int32Type>().value(row) as u32,
            codec: col("image_codec")?.as_string::<i32>().value(row),
            image: col("image")?.as_binary::<i32>().value(row),
        })
    }
}
