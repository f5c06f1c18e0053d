//! `MemTableCodec`: Ballista's logical-plan codec, plus in-memory tables. The manifest tables
//! (`datasets`, `shards`, `rejects`) are `MemTable`s built on the client from the manifests;
//! DataFusion's protobuf has no encoding for them, so a plan that reads them cannot reach the
//! scheduler with Ballista's own codec. This one carries their rows inside the plan as Arrow IPC
//! streams (they are a few rows per shard), and hands everything else to Ballista's codec. The
//! client and the scheduler must use it both.

use std::io::Cursor;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;
use ballista_core::serde::BallistaLogicalExtensionCodec;
use datafusion::catalog::TableProvider;
use datafusion::common::{DataFusionError, Result, TableReference};
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Extension, LogicalPlan};
use datafusion_proto::logical_plan::LogicalExtensionCodec;

/// Marks a buffer this codec wrote (Ballista's default codec writes nothing for table providers,
/// so there is nothing else to tell apart).
const TAG: &[u8] = b"mplug.memtable.v1\0";

/// Ballista's logical codec, plus `MemTable`s (see the module doc).
#[derive(Debug, Default)]
pub struct MemTableCodec {
    inner: BallistaLogicalExtensionCodec,
}

fn ipc_error(e: impl std::fmt::Display) -> DataFusionError {
    DataFusionError::Internal(format!("in-memory table in a cluster plan: {e}"))
}

/// `TAG`, the partition count (u32 LE), then per partition its length (u64 LE) and an Arrow IPC
/// stream of its batches.
fn encode(table: &MemTable, buf: &mut Vec<u8>) -> Result<()> {
    buf.extend_from_slice(TAG);
    buf.extend_from_slice(&(table.batches.len() as u32).to_le_bytes());
    for partition in &table.batches {
        // The session is read-only, so nothing holds the write lock.
        let batches = partition
            .try_read()
            .map_err(|_| ipc_error("table is being written"))?;
        let mut stream = Vec::new();
        let mut writer = StreamWriter::try_new(&mut stream, &table.schema()).map_err(ipc_error)?;
        for b in batches.iter() {
            writer.write(b).map_err(ipc_error)?;
        }
        writer.finish().map_err(ipc_error)?;
        drop(writer);
        buf.extend_from_slice(&(stream.len() as u64).to_le_bytes());
        buf.extend_from_slice(&stream);
    }
    Ok(())
}

fn take<'a>(buf: &mut &'a [u8], n: usize) -> Result<&'a [u8]> {
    if buf.len() < n {
        return Err(ipc_error("truncated"));
    }
    let (head, rest) = buf.split_at(n);
    *buf = rest;
    Ok(head)
}

fn decode(mut buf: &[u8], schema: SchemaRef) -> Result<MemTable> {
    let n = u32::from_le_bytes(take(&mut buf, 4)?.try_into().map_err(ipc_error)?);
    let mut partitions = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let len = u64::from_le_bytes(take(&mut buf, 8)?.try_into().map_err(ipc_error)?);
        let stream = take(&mut buf, len as usize)?;
        let reader = StreamReader::try_new(Cursor::new(stream), None).map_err(ipc_error)?;
        let batches = reader
            .collect::<std::result::Result<Vec<RecordBatch>, _>>()
            .map_err(ipc_error)?;
        partitions.push(batches);
    }
    MemTable::try_new(schema, partitions)
}

impl LogicalExtensionCodec for MemTableCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> Result<Extension> {
        self.inner.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        match buf.strip_prefix(TAG) {
            Some(rest) => Ok(Arc::new(decode(rest, schema)?)),
            None => self
                .inner
                .try_decode_table_provider(buf, table_ref, schema, ctx),
        }
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        match node.downcast_ref::<MemTable>() {
            Some(table) => encode(table, buf),
            None => self.inner.try_encode_table_provider(table_ref, node, buf),
        }
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn FileFormatFactory>> {
        self.inner.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn FileFormatFactory>,
    ) -> Result<()> {
        self.inner.try_encode_file_format(buf, node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    #[test]
    fn a_mem_table_comes_back_with_its_partitions_and_rows() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8, true),
            Field::new("rows", DataType::Int64, false),
        ]));
        let batch = |names: Vec<Option<&str>>, rows: Vec<i64>| {
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(StringArray::from(names)),
                    Arc::new(Int64Array::from(rows)),
                ],
            )
            .unwrap()
        };
        let parts = vec![
            vec![batch(vec![Some("coco"), None], vec![3, 4])],
            vec![],
            vec![
                batch(vec![Some("vg")], vec![7]),
                batch(vec![Some("sbu")], vec![9]),
            ],
        ];
        let table = Arc::new(MemTable::try_new(schema.clone(), parts.clone()).unwrap());
        let codec = MemTableCodec::default();
        let mut buf = Vec::new();
        let name = TableReference::bare("t");
        codec
            .try_encode_table_provider(&name, table, &mut buf)
            .unwrap();
        let ctx = TaskContext::default();
        let back = codec
            .try_decode_table_provider(&buf, &name, schema.clone(), &ctx)
            .unwrap();
        let back = back.downcast_ref::<MemTable>().unwrap();
        assert_eq!(back.batches.len(), 3);
        for (got, want) in back.batches.iter().zip(&parts) {
            assert_eq!(&*got.try_read().unwrap(), want);
        }
        // a cut buffer is an error, not a panic or a short table
        let cut = &buf[..buf.len() - 5];
        assert!(
            codec
                .try_decode_table_provider(cut, &name, schema, &ctx)
                .is_err()
        );
    }
}
