//! Writing query results: an aligned table for people, CSV / JSON lines / Parquet for programs.

use std::io::Write;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;

use crate::error::{Error, Result};

/// Output formats of `mplug sql`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned text table (binary cells shown as `<N bytes>`).
    Table,
    /// CSV with a header row.
    Csv,
    /// One JSON object per row.
    Json,
    /// A Parquet file (needs --output).
    Parquet,
}

/// Replaces binary columns by `<N bytes>` so a table of images stays readable.
fn summarise_binary(schema: &SchemaRef, batch: &RecordBatch) -> Result<(SchemaRef, RecordBatch)> {
    let mut fields = Vec::new();
    let mut cols: Vec<ArrayRef> = Vec::new();
    for (f, c) in schema.fields().iter().zip(batch.columns()) {
        let lens: Option<Vec<Option<String>>> = match c.data_type() {
            DataType::Binary => Some(
                c.as_binary::<i32>()
                    .iter()
                    .map(|v| v.map(|b| format!("<{} bytes>", b.len())))
                    .collect(),
            ),
            DataType::LargeBinary => Some(
                c.as_binary::<i64>()
                    .iter()
                    .map(|v| v.map(|b| format!("<{} bytes>", b.len())))
                    .collect(),
            ),
            DataType::BinaryView => Some(
                c.as_binary_view()
                    .iter()
                    .map(|v| v.map(|b| format!("<{} bytes>", b.len())))
                    .collect(),
            ),
            _ => None,
        };
        match lens {
            Some(v) => {
                fields.push(Field::new(f.name(), DataType::Utf8, true));
                cols.push(Arc::new(StringArray::from(v)));
            }
            None => {
                fields.push(f.as_ref().clone());
                cols.push(c.clone());
            }
        }
    }
    let schema = Arc::new(Schema::new(fields));
    Ok((schema.clone(), RecordBatch::try_new(schema, cols)?))
}

/// Writes `batches` in `format` to `out`.
pub fn write_results(
    format: OutputFormat,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    out: &mut dyn Write,
) -> Result<()> {
    match format {
        OutputFormat::Table => {
            let mut shown = Vec::with_capacity(batches.len());
            for b in batches {
                shown.push(summarise_binary(schema, b)?.1);
            }
            if shown.is_empty() {
                shown.push(summarise_binary(schema, &RecordBatch::new_empty(schema.clone()))?.1);
            }
            let text = arrow::util::pretty::pretty_format_batches(&shown)?;
            writeln!(out, "{text}")?;
            let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
            writeln!(out, "{rows} row{}", if rows == 1 { "" } else { "s" })?;
        }
        OutputFormat::Csv => {
            let mut w = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(out);
            for b in batches {
                w.write(b)?;
            }
        }
        OutputFormat::Json => {
            let mut w = arrow::json::LineDelimitedWriter::new(out);
            for b in batches {
                w.write(b)?;
            }
            w.finish()?;
        }
        OutputFormat::Parquet => {
            let mut buf = Vec::new();
            let mut w = ArrowWriter::try_new(&mut buf, schema.clone(), None)?;
            for b in batches {
                w.write(b)?;
            }
            w.close()?;
            out.write_all(&buf)?;
        }
    }
    Ok(())
}

/// Refuses to write Parquet to a terminal.
pub fn check_format_target(format: OutputFormat, has_output_file: bool) -> Result<()> {
    if format == OutputFormat::Parquet && !has_output_file {
        return Err(Error::input_with_hint(
            "--format parquet writes binary data",
            "pass --output FILE.parquet",
        ));
    }
    Ok(())
}
