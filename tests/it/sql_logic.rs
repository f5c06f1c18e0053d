//! SQL behaviour in SQL: every `tests/sql/*.slt` file runs in a fresh `mplug sql` session (read-only,
//! with the UDFs and the BERT vocab) over the `sql.rs` fixture (`coco`, `coco_official`: the 40
//! images of `synth --images 40 --seed 11`). The expected results are derived by hand from the
//! fixture and the schemas (the DuckDB comparisons in sql.rs stay the independent oracle for data
//! queries). `MPLUG_SLT_COMPLETE=1 cargo test --test it sql_logic` rewrites the files' expected
//! results, as DataFusion's `--complete`; review the diff before committing it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::DataType;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use sqllogictest::{DBOutput, DefaultColumnType};

use crate::common::{repo, vocab};
use mplug::query::{QuerySession, discover_datasets};

/// A query error as the `.slt` files match it, on one line: the message, each cause, the hint.
#[derive(Debug)]
struct SqlError(String);

impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SqlError {}

struct MplugDb(QuerySession);

impl MplugDb {
    fn open(root: &Path) -> Result<Self, SqlError> {
        let err = |e: mplug::Error| SqlError(e.to_string());
        let datasets = discover_datasets(&[root.to_path_buf()]).map_err(err)?;
        let tokenizer = mplug::text::BertTokenizer::from_vocab_file(&vocab()).map_err(err)?;
        let session = QuerySession::new(datasets, Default::default(), Some(Arc::new(tokenizer)))
            .map_err(err)?;
        Ok(MplugDb(session))
    }
}

fn column_type(t: &DataType) -> DefaultColumnType {
    match t {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => DefaultColumnType::Integer,
        DataType::Float16 | DataType::Float32 | DataType::Float64 => {
            DefaultColumnType::FloatingPoint
        }
        _ => DefaultColumnType::Text,
    }
}

/// Cells as sqllogictest writes them: `NULL`, `(empty)` for an empty string, else arrow's text.
fn rows(batches: &[RecordBatch]) -> Result<Vec<Vec<String>>, SqlError> {
    let options = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| SqlError(e.to_string()))?;
        for row in 0..batch.num_rows() {
            out.push(
                formatters
                    .iter()
                    .map(|f| match f.value(row).to_string() {
                        s if s.is_empty() => "(empty)".to_string(),
                        s => s,
                    })
                    .collect(),
            );
        }
    }
    Ok(out)
}

impl sqllogictest::DB for MplugDb {
    type Error = SqlError;
    type ColumnType = DefaultColumnType;

    fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SqlError> {
        let (schema, batches) = self.0.query(sql).map_err(|e| {
            let mut text = e.to_string();
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                text.push_str(&format!(" | caused by: {c}"));
                cause = c.source();
            }
            if let Some(hint) = e.hint() {
                text.push_str(&format!(" (hint: {hint})"));
            }
            SqlError(text)
        })?;
        Ok(DBOutput::Rows {
            types: schema
                .fields()
                .iter()
                .map(|f| column_type(f.data_type()))
                .collect(),
            rows: rows(&batches)?,
        })
    }

    fn engine_name(&self) -> &str {
        "mplug"
    }
}

/// Drives the runner's future on this thread. Not a tokio runtime: the session inside blocks on its
/// own, and a runtime cannot start inside another.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::yield_now();
    }
}

fn slt_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("tests/sql"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no tests/sql/*.slt");
    files
}

#[test]
fn slt_files_pass() {
    let root = crate::sql::fixture().root.clone();
    let complete = std::env::var_os("MPLUG_SLT_COMPLETE").is_some();
    let mut failures = Vec::new();
    for file in slt_files() {
        let root = root.clone();
        let mut runner = sqllogictest::Runner::new(move || {
            let root = root.clone();
            async move { MplugDb::open(&root) }
        });
        if complete {
            block_on(runner.update_test_file(
                &file,
                " ",
                sqllogictest::default_validator,
                sqllogictest::default_normalizer,
                sqllogictest::default_column_validator,
            ))
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        } else if let Err(e) = runner.run_file(&file) {
            failures.push(format!("{}: {}", file.display(), e.display(true)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
