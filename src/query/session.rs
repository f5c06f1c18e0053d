//! A DataFusion session holding every dataset, the manifest tables and mplug's UDFs.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::{DataFrame, ParquetReadOptions, SessionConfig, SessionContext};

use super::udf;
use crate::error::{Error, Result};
use crate::shards::catalog::DatasetEntry;
use crate::shards::writer::SHARDS_DIR;
use crate::text::BertTokenizer;

/// What SQL may do. The default is read-only: no DDL (e.g. `CREATE EXTERNAL TABLE`, which registers
/// arbitrary files), no DML (`INSERT`, `COPY ... TO`), no `SET`.
///
/// Limits keep one query from taking the machine: `memory_limit` caps what DataFusion's operators
/// reserve (sorts, aggregates and joins fail with "Resources exhausted" past it), `timeout` cancels
/// a query that runs longer.
#[derive(Debug, Clone, Copy, Default)]
pub struct SqlPolicy {
    /// Allow statements that write or register files.
    pub allow_write: bool,
    /// Bytes DataFusion's memory pool may hand out (`None`: unbounded).
    pub memory_limit: Option<usize>,
    /// Wall time a query may take (`None`: unbounded).
    pub timeout: Option<std::time::Duration>,
}

/// The first shard of `d` whose Parquet footer cannot be read, described with its path.
fn unreadable_shard(d: &DatasetEntry) -> Option<String> {
    use parquet::file::reader::SerializedFileReader;
    d.manifest.shards.iter().find_map(|shard| {
        let path = d.dir.join(&shard.path);
        let problem = match crate::sources::files::open_regular_file(&path) {
            Ok(file) => SerializedFileReader::new(file).err()?.to_string(),
            Err(e) => e.to_string(),
        };
        Some(format!(
            "shard `{}` is not readable Parquet: {problem}",
            path.display()
        ))
    })
}

/// Datasets registered as tables, ready for SQL.
pub struct QuerySession {
    ctx: SessionContext,
    runtime: tokio::runtime::Runtime,
    policy: SqlPolicy,
    datasets: Vec<DatasetEntry>,
    warnings: Vec<String>,
}

/// Maps a DataFusion error to ours: SQL/plan/schema errors are the user's (exit 2), with
/// DataFusion's error kept as the source.
pub fn map_df_error(e: DataFusionError) -> Error {
    let root = e.find_root();
    if let DataFusionError::SQL(parser, _) = root {
        // The parser's own error is the whole story; DataFusion's wrappers only repeat it.
        return Error::Query {
            message: "Cannot parse the SQL".to_string(),
            source: Box::new(parser.as_ref().clone()),
            hint: None,
        };
    }
    let hint = match root {
        DataFusionError::Plan(_) | DataFusionError::SchemaError(..) => {
            Some("tables: `SHOW TABLES`; columns: `DESCRIBE <table>`")
        }
        DataFusionError::ResourcesExhausted(_) => {
            Some("the query needs more memory than --memory-limit allows; raise it")
        }
        // Execution errors are raised by functions on the user's values (e.g. a hash_split
        // fraction outside [0, 1]); I/O, Parquet and Arrow failures are the shards'.
        DataFusionError::NotImplemented(_) | DataFusionError::Execution(_) => None,
        _ => return Error::format_caused("query failed", e),
    };
    Error::Query {
        message: root.to_string(),
        source: Box::new(e),
        hint: hint.map(str::to_string),
    }
}

/// The first node of `plan` that writes or registers files (DDL, DML, `COPY`, `SET`, ...), named
/// as the user would write it.
fn first_write(plan: &LogicalPlan) -> Option<String> {
    let mut found = None;
    // The closure never fails; the traversal's Result only carries DataFusion's own errors.
    let _ = plan.apply_with_subqueries(|node| {
        found = match node {
            LogicalPlan::Ddl(ddl) => Some(ddl.name().to_string()),
            LogicalPlan::Dml(dml) => Some(dml.op.to_string()),
            LogicalPlan::Copy(_) => Some("COPY".to_string()),
            LogicalPlan::Statement(stmt) => Some(stmt.name().to_string()),
            _ => None,
        };
        Ok(if found.is_some() {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    found
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
        Self::on_cluster(datasets, policy, tokenizer, None)
    }

    /// As [`Self::new`]; with `cluster` (`df://HOST:PORT`) the queries run on that Ballista
    /// cluster (feature `cluster`, [`super::cluster`]) instead of in this process.
    pub fn on_cluster(
        datasets: Vec<DatasetEntry>,
        policy: SqlPolicy,
        tokenizer: Option<Arc<BertTokenizer>>,
        cluster: Option<&str>,
    ) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::internal_caused("cannot start the query runtime", e))?;
        // DATAFUSION_* environment variables tune the engine (e.g. DATAFUSION_EXECUTION_TARGET_PARTITIONS).
        let config = SessionConfig::from_env()
            .map_err(map_df_error)?
            .with_information_schema(true);
        let mut runtime_env = RuntimeEnvBuilder::new();
        if let Some(bytes) = policy.memory_limit {
            runtime_env = runtime_env.with_memory_limit(bytes, 1.0);
        }
        let runtime_env = runtime_env.build_arc().map_err(map_df_error)?;
        let ctx = match cluster {
            None => SessionContext::new_with_config_rt(config, runtime_env),
            #[cfg(feature = "cluster")]
            Some(url) => {
                runtime.block_on(super::cluster::remote_context(url, config, runtime_env))?
            }
            #[cfg(not(feature = "cluster"))]
            Some(_) => {
                return Err(Error::input(
                    "--cluster needs a build with the `cluster` feature (on by default)",
                ));
            }
        };
        let mut warnings = Vec::new();
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
            // One unreadable shard must not take every query down: when registering fails (DataFusion
            // reads every footer then), find the file, leave that dataset out and say which file it
            // is. Footers are read again only on that failure path.
            let registered = runtime.block_on(ctx.register_parquet(
                &d.table,
                &url,
                ParquetReadOptions::default(),
            ));
            if let Err(e) = registered {
                let Some(problem) = unreadable_shard(d) else {
                    return Err(map_df_error(e));
                };
                warnings.push(format!(
                    "dataset `{}` is left out: {problem} (`mplug verify {}` checks it)",
                    d.table,
                    d.dir.display()
                ));
            }
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
            warnings,
        })
    }

    /// What the session left out and why (unreadable shards), for the CLI to print.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
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
                n(&|d| d.manifest.totals.samples_written),
                n(&|d| d.manifest.totals.texts_written),
                n(&|d| d.manifest.totals.samples_rejected),
                n(&|d| d.manifest.totals.texts_rejected),
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

    /// Plans `sql` under the session's policy: a statement that writes or registers files is
    /// refused as [`Error::ReadOnlySql`] unless the policy allows writing.
    pub fn plan(&self, sql: &str) -> Result<DataFrame> {
        let state = self.ctx.state();
        let plan = self
            .runtime
            .block_on(state.create_logical_plan(sql))
            .map_err(map_df_error)?;
        if !self.policy.allow_write
            && let Some(statement) = first_write(&plan)
        {
            return Err(Error::ReadOnlySql { statement });
        }
        self.runtime
            .block_on(self.ctx.execute_logical_plan(plan))
            .map_err(map_df_error)
    }

    /// Runs a query's execution under the policy's time limit; dropping the future on timeout
    /// cancels DataFusion's tasks.
    fn run_limited<T>(
        &self,
        work: impl std::future::Future<Output = datafusion::error::Result<T>>,
    ) -> Result<T> {
        let Some(limit) = self.policy.timeout else {
            return self.runtime.block_on(work).map_err(map_df_error);
        };
        // The timer must be created inside the runtime (it registers with its clock).
        match self
            .runtime
            .block_on(async { tokio::time::timeout(limit, work).await })
        {
            Ok(result) => result.map_err(map_df_error),
            Err(_) => Err(Error::input_with_hint(
                format!(
                    "the query ran longer than {} s and was stopped",
                    limit.as_secs_f64()
                ),
                "pass a larger --timeout (or 0 for none)",
            )),
        }
    }

    /// Runs `sql` and collects every batch.
    pub fn query(&self, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let df = self.plan(sql)?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let batches = self.run_limited(df.collect())?;
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
        let batches = self.run_limited(datafusion::physical_plan::collect(plan.clone(), task))?;
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
