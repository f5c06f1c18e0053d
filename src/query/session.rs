//! A DataFusion session holding every dataset, the manifest tables and mplug's UDFs.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::execution::context::SQLOptions;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::{DataFrame, ParquetReadOptions, SessionConfig, SessionContext};

use super::catalog::DatasetEntry;
use super::udf;
use crate::error::{Error, Result};
use crate::shards::writer::SHARDS_DIR;
use crate::text::BertTokenizer;

/// What SQL may do. The default is read-only: no DDL (e.g. `CREATE EXTERNAL TABLE`, which registers
/// arbitrary files), no DML (`INSERT`, `COPY ... TO`), no `SET`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SqlPolicy {
    /// Allow statements that write or register files.
    pub allow_write: bool,
}

/// Datasets registered as tables, ready for SQL.
pub struct QuerySession {
    ctx: SessionContext,
    runtime: tokio::runtime::Runtime,
    policy: SqlPolicy,
    datasets: Vec<DatasetEntry>,
}

/// Maps a DataFusion error to ours: SQL/plan/schema errors are the user's (exit 2).
pub fn map_df_error(e: DataFusionError) -> Error {
    let root = e.find_root();
    match root {
        DataFusionError::SQL(..) | DataFusionError::Plan(_) | DataFusionError::SchemaError(..) => {
            Error::input_with_hint(
                root.to_string(),
                "tables: `SHOW TABLES`; columns: `DESCRIBE <table>`",
            )
        }
        DataFusionError::NotImplemented(_) => Error::input(root.to_string()),
        _ => Error::format(format!("query failed: {e}")),
    }
}

fn string_col(values: Vec<String>) -> ArrayRef {
    Arc::new(StringArray::from(values))
}

fn u64_col(values: Vec<u64>) -> ArrayRef {
    Arc::new(UInt64Array::from(values))
}

fn mem_table(fields: Vec<(&str, DataType)>, columns: Vec<ArrayRef>) -> Result<Arc<MemTable>> {
    let schema: SchemaRef = Arc::new(Schema::new(
        fields
            .into_iter()
            .map(|(n, t)| Field::new(n, t, false))
            .collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    Ok(Arc::new(
        MemTable::try_new(schema, vec![vec![batch]]).map_err(map_df_error)?,
    ))
}

impl QuerySession {
    /// Registers `datasets` (one Parquet table each) plus `datasets`, `shards` and `rejects`.
    /// `tokenizer` enables `token_count(text)`.
    pub fn new(
        datasets: Vec<DatasetEntry>,
        policy: SqlPolicy,
        tokenizer: Option<Arc<BertTokenizer>>,
    ) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Internal(format!("cannot start the query runtime: {e}")))?;
        // DATAFUSION_* environment variables tune the engine (e.g. DATAFUSION_EXECUTION_TARGET_PARTITIONS).
        let config = SessionConfig::from_env()
            .map_err(map_df_error)?
            .with_information_schema(true);
        let ctx = SessionContext::new_with_config(config);
        for name in ["datasets", "shards", "rejects"] {
            if datasets.iter().any(|d| d.table == name) {
                return Err(Error::input(format!(
                    "a dataset is named `{name}`, which is reserved for the manifest table; re-ingest it with --name"
                )));
            }
        }
        for d in &datasets {
            let dir = d.dir.join(SHARDS_DIR);
            let url = format!("{}/", dir.display());
            if d.manifest.shards.is_empty() {
                // Every input was rejected: an empty table with the dataset's schema, so queries work.
                let Some(spec) = crate::shards::SchemaSpec::by_id(&d.manifest.schema) else {
                    return Err(Error::format(format!(
                        "unknown row schema `{}` in {}",
                        d.manifest.schema,
                        d.dir.display()
                    )));
                };
                let schema = spec.arrow_schema();
                let empty = MemTable::try_new(schema, vec![vec![]]).map_err(map_df_error)?;
                ctx.register_table(d.table.as_str(), Arc::new(empty))
                    .map_err(map_df_error)?;
                continue;
            }
            runtime
                .block_on(ctx.register_parquet(&d.table, &url, ParquetReadOptions::default()))
                .map_err(map_df_error)?;
        }
        ctx.register_table("datasets", Self::datasets_table(&datasets)?)
            .map_err(map_df_error)?;
        ctx.register_table("shards", Self::shards_table(&datasets)?)
            .map_err(map_df_error)?;
        ctx.register_table("rejects", Self::rejects_table(&datasets)?)
            .map_err(map_df_error)?;
        udf::register_all(&ctx, tokenizer);
        Ok(Self {
            ctx,
            runtime,
            policy,
            datasets,
        })
    }

    fn datasets_table(ds: &[DatasetEntry]) -> Result<Arc<MemTable>> {
        let m = |f: &dyn Fn(&DatasetEntry) -> String| string_col(ds.iter().map(f).collect());
        let n = |f: &dyn Fn(&DatasetEntry) -> u64| u64_col(ds.iter().map(f).collect());
        mem_table(
            vec![
                ("name", DataType::Utf8),
                ("path", DataType::Utf8),
                ("schema", DataType::Utf8),
                ("dataset_blake3", DataType::Utf8),
                ("tool_version", DataType::Utf8),
                ("images", DataType::UInt64),
                ("captions", DataType::UInt64),
                ("images_rejected", DataType::UInt64),
                ("captions_rejected", DataType::UInt64),
                ("shards", DataType::UInt64),
                ("bytes", DataType::UInt64),
            ],
            vec![
                m(&|d| d.table.clone()),
                m(&|d| d.dir.display().to_string()),
                m(&|d| d.manifest.schema.clone()),
                m(&|d| d.manifest.dataset_blake3.clone()),
                m(&|d| d.manifest.tool.version.clone()),
                n(&|d| d.manifest.totals.images_written),
                n(&|d| d.manifest.totals.captions_written),
                n(&|d| d.manifest.totals.images_rejected),
                n(&|d| d.manifest.totals.captions_rejected),
                n(&|d| d.manifest.totals.shards),
                n(&|d| d.manifest.totals.shard_bytes),
            ],
        )
    }

    fn shards_table(ds: &[DatasetEntry]) -> Result<Arc<MemTable>> {
        let rows: Vec<(&DatasetEntry, &crate::shards::ShardEntry)> = ds
            .iter()
            .flat_map(|d| d.manifest.shards.iter().map(move |s| (d, s)))
            .collect();
        mem_table(
            vec![
                ("dataset", DataType::Utf8),
                ("path", DataType::Utf8),
                ("rows", DataType::UInt64),
                ("bytes", DataType::UInt64),
                ("row_groups", DataType::UInt64),
                ("blake3", DataType::Utf8),
            ],
            vec![
                string_col(rows.iter().map(|(d, _)| d.table.clone()).collect()),
                string_col(rows.iter().map(|(_, s)| s.path.clone()).collect()),
                u64_col(rows.iter().map(|(_, s)| s.rows).collect()),
                u64_col(rows.iter().map(|(_, s)| s.bytes).collect()),
                u64_col(rows.iter().map(|(_, s)| s.row_groups).collect()),
                string_col(rows.iter().map(|(_, s)| s.blake3.clone()).collect()),
            ],
        )
    }

    fn rejects_table(ds: &[DatasetEntry]) -> Result<Arc<MemTable>> {
        let rows: Vec<(&DatasetEntry, &crate::shards::RejectRecord)> = ds
            .iter()
            .flat_map(|d| d.manifest.rejects.iter().map(move |r| (d, r)))
            .collect();
        mem_table(
            vec![
                ("dataset", DataType::Utf8),
                ("source", DataType::Utf8),
                ("sample_id", DataType::Utf8),
                ("stage", DataType::Utf8),
                ("unit", DataType::Utf8),
                ("reason", DataType::Utf8),
            ],
            vec![
                string_col(rows.iter().map(|(d, _)| d.table.clone()).collect()),
                string_col(rows.iter().map(|(_, r)| r.source.clone()).collect()),
                string_col(rows.iter().map(|(_, r)| r.sample_id.clone()).collect()),
                string_col(rows.iter().map(|(_, r)| serde_name(&r.stage)).collect()),
                string_col(rows.iter().map(|(_, r)| serde_name(&r.unit)).collect()),
                string_col(rows.iter().map(|(_, r)| r.reason.clone()).collect()),
            ],
        )
    }

    /// The datasets registered.
    pub fn datasets(&self) -> &[DatasetEntry] {
        &self.datasets
    }

    /// Plans `sql` under the session's policy.
    pub fn plan(&self, sql: &str) -> Result<DataFrame> {
        let options = SQLOptions::new()
            .with_allow_ddl(self.policy.allow_write)
            .with_allow_dml(self.policy.allow_write)
            .with_allow_statements(self.policy.allow_write);
        self.runtime.block_on(self.ctx.sql_with_options(sql, options)).map_err(|e| {
            let err = map_df_error(e);
            match err {
                Error::Input { message, .. } if message.contains("not supported") || message.contains("Only") => {
                    Error::input_with_hint(
                        message,
                        "mplug sql is read-only by default; pass --allow-write to run statements that write or register files",
                    )
                }
                other => other,
            }
        })
    }

    /// Runs `sql` and collects every batch.
    pub fn query(&self, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let df = self.plan(sql)?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let batches = self.runtime.block_on(df.collect()).map_err(map_df_error)?;
        Ok((schema, batches))
    }

    /// Runs `sql` and returns the executed physical plan (with its metrics, e.g. `bytes_scanned`).
    pub fn query_with_plan(&self, sql: &str) -> Result<(Vec<RecordBatch>, Arc<dyn ExecutionPlan>)> {
        let df = self.plan(sql)?;
        let plan = self
            .runtime
            .block_on(df.create_physical_plan())
            .map_err(map_df_error)?;
        let task = self.ctx.task_ctx();
        let batches = self
            .runtime
            .block_on(datafusion::physical_plan::collect(plan.clone(), task))
            .map_err(map_df_error)?;
        Ok((batches, plan))
    }
}

/// The serde (snake_case) name of a unit enum value, as written in manifests.
fn serde_name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|j| j.as_str().map(String::from))
        .unwrap_or_default()
}

/// Sums a metric (e.g. `bytes_scanned`, `output_rows`) over every node of an executed plan.
pub fn sum_metric(plan: &Arc<dyn ExecutionPlan>, name: &str) -> usize {
    let own = plan
        .metrics()
        .and_then(|m| m.sum_by_name(name))
        .map_or(0, |v| v.as_usize());
    own + plan
        .children()
        .iter()
        .map(|c| sum_metric(c, name))
        .sum::<usize>()
}
