//! `mplug select`: freeze a query result into a sample list the loader accepts.
//!
//! The query returns `image_id` (and `dataset` when more than one dataset is registered); each row is
//! resolved to its (shard, row) position by reading the dataset's `image_id` column. The list records
//! the SQL, the hash of every dataset it points into and its own hash; samples are ordered by
//! (dataset, shard, row), so the same query on the same data gives a byte-identical file.

use std::collections::{BTreeMap, HashMap};

use arrow::array::{Array, AsArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use parquet::arrow::ProjectionMask;

use super::session::QuerySession;
use crate::error::{Error, Result};
use crate::shards::catalog::DatasetEntry;
use crate::shards::sample_list::{ListDataset, SampleList, SampleRef};

/// image_id → (shard path, row index) within one dataset.
type RowPositions = HashMap<String, (String, u64)>;

/// The positions of every row of a dataset, reading only the `image_id` column.
fn positions(entry: &DatasetEntry) -> Result<RowPositions> {
    let mut map = HashMap::new();
    for shard in &entry.manifest.shards {
        let path = entry.dir.join(&shard.path);
        let builder = crate::shards::reader::open(&path, &entry.manifest.name)?;
        let mask = ProjectionMask::columns(builder.parquet_schema(), ["image_id"]);
        let mut row = 0u64;
        for batch in builder.with_projection(mask).build()? {
            let batch = batch?;
            let ids = cast(batch.column(0), &DataType::Utf8)?;
            for id in ids.as_string::<i32>().iter() {
                map.insert(
                    id.unwrap_or_default().to_string(),
                    (shard.path.clone(), row),
                );
                row += 1;
            }
        }
    }
    Ok(map)
}

/// Runs `sql` and builds the list.
pub fn freeze_query(session: &QuerySession, sql: &str) -> Result<SampleList> {
    let (schema, batches) = session.query(sql)?;
    let id_col = schema.index_of("image_id").map_err(|_| {
        Error::input_with_hint(
            "the query must return an `image_id` column",
            "e.g. SELECT image_id FROM coco WHERE ...",
        )
    })?;
    let ds_col = schema.index_of("dataset").ok();
    let registered: Vec<&DatasetEntry> = session
        .datasets()
        .iter()
        .filter(|d| !d.manifest.shards.is_empty())
        .collect();
    if ds_col.is_none() && registered.len() != 1 {
        return Err(Error::input_with_hint(
            format!(
                "{} datasets are registered, so the query must also return a `dataset` column",
                registered.len()
            ),
            "e.g. SELECT 'coco' AS dataset, image_id FROM coco WHERE ...",
        ));
    }
    let mut wanted: Vec<(String, String)> = Vec::new();
    for b in &batches {
        let ids = cast(b.column(id_col), &DataType::Utf8)?;
        let ids = ids.as_string::<i32>();
        let ds = match ds_col {
            Some(c) => Some(cast(b.column(c), &DataType::Utf8)?),
            None => None,
        };
        for i in 0..b.num_rows() {
            let dataset = match &ds {
                Some(d) => d.as_string::<i32>().value(i).to_string(),
                None => registered[0].table.clone(),
            };
            if ids.is_null(i) {
                return Err(Error::input("the query returned a NULL image_id"));
            }
            wanted.push((dataset, ids.value(i).to_string()));
        }
    }
    let mut lookup: BTreeMap<String, (&DatasetEntry, RowPositions)> = BTreeMap::new();
    let mut samples = Vec::with_capacity(wanted.len());
    for (dataset, image_id) in wanted {
        if !lookup.contains_key(&dataset) {
            let entry = session.datasets().iter().find(|d| d.table == dataset).ok_or_else(|| {
                Error::input(format!("the query's `dataset` column names `{dataset}`, which is not a dataset table"))
            })?;
            lookup.insert(dataset.clone(), (entry, positions(entry)?));
        }
        let (_, pos) = &lookup[&dataset];
        let Some((shard, row)) = pos.get(&image_id) else {
            return Err(Error::input(format!(
                "image_id `{image_id}` is not in dataset `{dataset}`"
            )));
        };
        samples.push(SampleRef {
            dataset,
            shard: shard.clone(),
            row: *row,
            image_id,
        });
    }
    samples.sort();
    let datasets: Vec<ListDataset> = lookup
        .values()
        .map(|(e, _)| ListDataset {
            name: e.table.clone(),
            dataset_blake3: e.manifest.dataset_blake3.clone(),
        })
        .collect();
    Ok(SampleList::new(sql, datasets, samples))
}
