//! Which rows a contact sheet shows: one dataset's rows through the same DataFusion session as
//! `mplug sql` (`--split`, `--where`, `--samples`), keys first (a light query), then only the chosen
//! rows with their pixels.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch, UInt32Array};
use arrow::datatypes::{DataType, Schema};
use parquet::arrow::ProjectionMask;

use crate::error::{Error, Result};
use crate::query::session::{QuerySession, SqlPolicy};
use crate::shards::catalog::{DatasetEntry, discover_datasets};

/// One dataset opened for display.
pub struct ShowSource {
    /// The dataset.
    pub entry: DatasetEntry,
    session: QuerySession,
    conditions: Vec<String>,
}

/// The row key of each schema (unique per row).
pub fn key_column(schema: &str) -> Result<&'static str> {
    Ok(match schema {
        "image_text.v1" | "image_qa.v1" | "image_grounding.v1" => "image_id",
        "image_statement.v1" => "sample_id",
        "video_text.v1" => "video_id",
        other => {
            return Err(Error::input(format!(
                "`mplug show` does not know row schema `{other}`"
            )));
        }
    })
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl ShowSource {
    /// Opens the one dataset under `data` and the row filter (`split`, `where_`, the image ids of
    /// a sample list).
    pub fn open(
        data: &Path,
        split: Option<&str>,
        where_: Option<&str>,
        samples: Option<&Path>,
    ) -> Result<Self> {
        let all = discover_datasets(&[data.to_path_buf()])?;
        let entry = match all.as_slice() {
            [one] => one.clone(),
            [] => {
                return Err(Error::input_with_hint(
                    format!("no dataset under `{}`", data.display()),
                    "pass the directory `mplug ingest` wrote",
                ));
            }
            many => {
                let names: Vec<String> = many.iter().map(|d| d.dir.display().to_string()).collect();
                return Err(Error::input_with_hint(
                    format!(
                        "{} datasets under `{}`: {}",
                        many.len(),
                        data.display(),
                        names.join(", ")
                    ),
                    "pass one dataset directory",
                ));
            }
        };
        let key = key_column(&entry.manifest.schema)?;
        let mut conditions = Vec::new();
        if let Some(s) = split {
            conditions.push(format!("split = {}", quote(s)));
        }
        if let Some(w) = where_ {
            conditions.push(format!("({w})"));
        }
        if let Some(path) = samples {
            let list = crate::shards::sample_list::read_list(path)?;
            let ids: Vec<String> = list
                .samples
                .iter()
                .filter(|s| s.dataset == entry.table)
                .map(|s| quote(&s.image_id))
                .collect();
            if ids.is_empty() {
                return Err(Error::input(format!(
                    "sample list `{}` holds no sample of table `{}`",
                    path.display(),
                    entry.table
                )));
            }
            conditions.push(format!("{key} IN ({})", ids.join(", ")));
        }
        let session = QuerySession::new(vec![entry.clone()], SqlPolicy::default(), None)?;
        Ok(ShowSource {
            entry,
            session,
            conditions,
        })
    }

    /// The selected rows' `columns` (key first), in stored order. Empty selections are an error.
    pub fn light_rows(&self, columns: &[&str]) -> Result<RecordBatch> {
        let key = key_column(&self.entry.manifest.schema)?;
        let mut cols = vec![key];
        cols.extend(columns.iter().copied().filter(|c| *c != key));
        let sql = format!(
            "SELECT {} FROM {}{}",
            cols.join(", "),
            self.entry.table,
            self.where_clause(&[])
        );
        let batch = self.run(&sql)?;
        if batch.num_rows() == 0 {
            return Err(Error::input_with_hint(
                format!("the selection from `{}` is empty", self.entry.manifest.name),
                "check --split / --where with `mplug sql`",
            ));
        }
        // DataFusion returns partitions in any order: put the rows back in stored order
        let order = self.stored_order(key)?;
        let keys = batch
            .column(0)
            .as_string_opt::<i32>()
            .ok_or_else(|| Error::format(format!("no utf8 `{key}` column")))?;
        let mut idx: Vec<u32> = (0..batch.num_rows() as u32).collect();
        idx.sort_by_key(|&i| {
            order
                .get(keys.value(i as usize))
                .copied()
                .unwrap_or(u64::MAX)
        });
        let idx = UInt32Array::from(idx);
        let columns = batch
            .columns()
            .iter()
            .map(|c| arrow::compute::take(c.as_ref(), &idx, None))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(RecordBatch::try_new(batch.schema(), columns)?)
    }

    /// key → position over the dataset's shards, reading only the key column.
    fn stored_order(&self, key: &str) -> Result<HashMap<String, u64>> {
        let mut map = HashMap::new();
        let mut n = 0u64;
        for shard in &self.entry.manifest.shards {
            let path = self.entry.dir.join(&shard.path);
            let builder = crate::shards::reader::open(&path, &self.entry.manifest.name)?;
            let mask = ProjectionMask::columns(builder.parquet_schema(), [key]);
            for batch in builder.with_projection(mask).build()? {
                let batch = batch?;
                if let Some(ids) = batch.column(0).as_string_opt::<i32>() {
                    for i in 0..ids.len() {
                        map.entry(ids.value(i).to_string()).or_insert(n);
                        n += 1;
                    }
                }
            }
        }
        Ok(map)
    }

    /// Every column of the rows with `keys`, in the order of `keys`.
    pub fn rows(&self, keys: &[String]) -> Result<RecordBatch> {
        let key = key_column(&self.entry.manifest.schema)?;
        let list: Vec<String> = keys.iter().map(|k| quote(k)).collect();
        let sql = format!(
            "SELECT * FROM {}{}",
            self.entry.table,
            self.where_clause(&[format!("{key} IN ({})", list.join(", "))])
        );
        let batch = self.run(&sql)?;
        let col = batch
            .column_by_name(key)
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or_else(|| Error::format(format!("no utf8 `{key}` column")))?;
        let mut at: HashMap<&str, u32> = HashMap::new();
        for i in 0..col.len() {
            at.entry(col.value(i)).or_insert(i as u32);
        }
        let take: Vec<u32> = keys
            .iter()
            .map(|k| {
                at.get(k.as_str())
                    .copied()
                    .ok_or_else(|| Error::internal(format!("row `{k}` vanished between queries")))
            })
            .collect::<Result<_>>()?;
        let idx = UInt32Array::from(take);
        let columns = batch
            .columns()
            .iter()
            .map(|c| arrow::compute::take(c.as_ref(), &idx, None))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(RecordBatch::try_new(batch.schema(), columns)?)
    }

    fn where_clause(&self, extra: &[String]) -> String {
        let all: Vec<&String> = self.conditions.iter().chain(extra).collect();
        if all.is_empty() {
            String::new()
        } else {
            let parts: Vec<&str> = all.iter().map(|s| s.as_str()).collect();
            format!(" WHERE {}", parts.join(" AND "))
        }
    }

    fn run(&self, sql: &str) -> Result<RecordBatch> {
        let (schema, batches) = self.session.query(sql)?;
        plain_types(&arrow::compute::concat_batches(&schema, &batches)?)
    }
}

/// DataFusion reads strings and binaries as view types; the tiles read the shards' own types.
fn plain_type(t: &DataType) -> DataType {
    match t {
        DataType::Utf8View => DataType::Utf8,
        DataType::BinaryView => DataType::Binary,
        DataType::List(f) => DataType::List(Arc::new(
            f.as_ref().clone().with_data_type(plain_type(f.data_type())),
        )),
        other => other.clone(),
    }
}

fn plain_types(b: &RecordBatch) -> Result<RecordBatch> {
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    for (f, c) in b.schema().fields().iter().zip(b.columns()) {
        let t = plain_type(f.data_type());
        columns.push(arrow::compute::cast(c, &t)?);
        fields.push(f.as_ref().clone().with_data_type(t));
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}
