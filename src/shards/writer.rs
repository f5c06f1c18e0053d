//! `ShardWriter`: rows in → zstd Parquet shards out, cut at deterministic row-group and shard sizes.
//!
//! Row groups and shards are cut by the rows' own byte sizes (never by timing or thread count), so the
//! same rows always give the same files. Each shard is written to `part-NNNNN.parquet.tmp` and renamed
//! when closed; the blake3 hash is computed on the bytes as they are written.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use serde::{Deserialize, Serialize};

use super::commit::{rename_durable, temp_path};
use super::manifest::ShardEntry;
use super::rows::ShardRow;
use super::rows_hash::RowsHash;
use super::schema::SchemaSpec;
use crate::error::{Error, Result};

/// The Parquet footer key holding the hash of the resolved pipeline settings a shard was written
/// with (`mplug verify` checks it against the manifest).
pub const PIPELINE_BLAKE3_KEY: &str = "mplug.pipeline_blake3";

/// Where shards live inside a dataset directory.
pub const SHARDS_DIR: &str = "shards";

/// Size and compression settings (the `[shards]` table of a pipeline file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardWriterOptions {
    /// A shard is closed once the rows written to it reach this many bytes (before compression); the
    /// row group in progress is closed early when needed, so shards stay near this size.
    pub shard_size_bytes: u64,
    /// A row group is closed once its rows reach this many bytes, or `row_group_max_rows` rows.
    pub row_group_bytes: u64,
    /// Upper bound on rows per row group (keeps metadata-only scans fine-grained).
    pub row_group_max_rows: usize,
    /// zstd level for every column (except already-compressed JPEG bytes, stored as they are).
    pub zstd_level: i32,
}

impl Default for ShardWriterOptions {
    fn default() -> Self {
        // 256 MiB shards and 16 MiB row groups: a loader reading one row group at a time per reader
        // thread keeps ~16 MiB in flight, and a shard is big enough for sequential reads.
        Self {
            shard_size_bytes: 256 << 20,
            row_group_bytes: 16 << 20,
            row_group_max_rows: 4096,
            zstd_level: 3,
        }
    }
}

/// A `Write` that hashes and counts what passes through it.
struct HashingWriter<W: Write> {
    inner: W,
    hasher: blake3::Hasher,
    bytes: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

struct OpenShard {
    index: usize,
    tmp_path: PathBuf,
    final_path: PathBuf,
    writer: ArrowWriter<HashingWriter<BufWriter<fs_err::File>>>,
    rows: u64,
    row_bytes: u64,
    row_groups: usize,
}

/// Writes typed rows into a sequence of Parquet shards.
pub struct ShardWriter<R: ShardRow> {
    dataset_dir: PathBuf,
    schema: SchemaRef,
    props: WriterProperties,
    options: ShardWriterOptions,
    current: Option<OpenShard>,
    pending: Vec<R>,
    /// The sample index (annotation order) of each pending row, for the rows hash.
    pending_samples: Vec<u64>,
    pending_bytes: u64,
    finished: Vec<ShardEntry>,
    rows_hash: RowsHash,
}

impl<R: ShardRow> ShardWriter<R> {
    /// Creates a writer for `dataset_dir/shards/`. `metadata` goes into every shard's footer.
    /// `precompressed` names columns whose values are already compressed (JPEG bytes): they are stored
    /// without zstd, which would spend CPU for no size gain.
    pub fn create(
        dataset_dir: &Path,
        spec: &SchemaSpec,
        options: ShardWriterOptions,
        metadata: Vec<(String, String)>,
        precompressed: &[&str],
    ) -> Result<Self> {
        fs_err::create_dir_all(dataset_dir.join(SHARDS_DIR))?;
        let level = ZstdLevel::try_new(options.zstd_level).map_err(|e| {
            Error::input_caused(format!("invalid zstd level {}", options.zstd_level), e)
        })?;
        let mut kv = vec![KeyValue::new("mplug.schema".to_string(), spec.id())];
        kv.extend(metadata.into_iter().map(|(k, v)| KeyValue::new(k, v)));
        let mut builder = WriterProperties::builder()
            .set_compression(Compression::ZSTD(level))
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_dictionary_enabled(false)
            .set_max_row_group_row_count(None) // we cut row groups ourselves, by bytes
            .set_created_by(format!("mplug {}", env!("CARGO_PKG_VERSION")))
            .set_key_value_metadata(Some(kv));
        for f in &spec.fields {
            // Parquet settings apply to leaf columns: `frames` (list<binary>) is `frames.list.item`
            let depth = f.type_name.matches("list<").count();
            let mut parts = vec![f.name.clone()];
            for _ in 0..depth {
                parts.extend(["list".to_string(), "item".to_string()]);
            }
            let path = ColumnPath::new(parts);
            if !f.statistics {
                builder =
                    builder.set_column_statistics_enabled(path.clone(), EnabledStatistics::None);
            }
            if f.dictionary {
                builder = builder.set_column_dictionary_enabled(path.clone(), true);
            }
            if precompressed.contains(&f.name.as_str()) {
                builder = builder.set_column_compression(path, Compression::UNCOMPRESSED);
            }
        }
        Ok(Self {
            dataset_dir: dataset_dir.to_path_buf(),
            schema: spec.arrow_schema(),
            props: builder.build(),
            options,
            current: None,
            pending: Vec::new(),
            pending_samples: Vec::new(),
            pending_bytes: 0,
            finished: Vec::new(),
            rows_hash: RowsHash::default(),
        })
    }

    /// Adds the row of sample `sample` (its index in the annotation order); may close a row group
    /// and a shard.
    pub fn push(&mut self, row: R, sample: u64) -> Result<()> {
        self.pending_bytes += row.byte_size() as u64;
        self.pending.push(row);
        self.pending_samples.push(sample);
        let shard_bytes = self.current.as_ref().map_or(0, |s| s.row_bytes);
        if self.pending_bytes >= self.options.row_group_bytes
            || self.pending.len() >= self.options.row_group_max_rows
            || shard_bytes + self.pending_bytes >= self.options.shard_size_bytes
        {
            self.flush_row_group()?;
        }
        Ok(())
    }

    fn open_shard(&mut self) -> Result<OpenShard> {
        let index = self.finished.len();
        let final_path = self
            .dataset_dir
            .join(SHARDS_DIR)
            .join(shard_file_name(index));
        let tmp_path = temp_path(&final_path);
        let file = fs_err::File::create(&tmp_path)?;
        let sink = HashingWriter {
            inner: BufWriter::with_capacity(1 << 20, file),
            hasher: blake3::Hasher::new(),
            bytes: 0,
        };
        let writer = ArrowWriter::try_new(sink, self.schema.clone(), Some(self.props.clone()))?;
        Ok(OpenShard {
            index,
            tmp_path,
            final_path,
            writer,
            rows: 0,
            row_bytes: 0,
            row_groups: 0,
        })
    }

    fn flush_row_group(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut shard = match self.current.take() {
            Some(s) => s,
            None => self.open_shard()?,
        };
        let batch = R::to_batch(&self.pending, &self.schema)?;
        self.rows_hash.add_batch(&batch, &self.pending_samples)?;
        self.pending_samples.clear();
        shard.writer.write(&batch)?;
        shard.writer.flush()?;
        shard.rows += self.pending.len() as u64;
        shard.row_bytes += self.pending_bytes;
        shard.row_groups += 1;
        self.pending.clear();
        self.pending_bytes = 0;
        if shard.row_bytes >= self.options.shard_size_bytes {
            self.close_shard(shard)?;
        } else {
            self.current = Some(shard);
        }
        Ok(())
    }

    fn close_shard(&mut self, shard: OpenShard) -> Result<()> {
        let mut sink = shard.writer.into_inner()?;
        sink.flush()?;
        let (bytes, hash) = (sink.bytes, sink.hasher.finalize().to_hex().to_string());
        let file = sink
            .inner
            .into_inner()
            .map_err(|e| Error::Io(e.into_error()))?;
        file.sync_all()?;
        drop(file);
        rename_durable(&shard.tmp_path, &shard.final_path)?;
        self.finished.push(ShardEntry {
            path: format!("{SHARDS_DIR}/{}", shard_file_name(shard.index)),
            rows: shard.rows,
            bytes,
            row_groups: shard.row_groups as u64,
            blake3: hash,
        });
        Ok(())
    }

    /// Flushes and closes everything; returns the shards in order and the rows hash.
    pub fn finish(mut self) -> Result<(Vec<ShardEntry>, RowsHash)> {
        self.flush_row_group()?;
        if let Some(shard) = self.current.take() {
            self.close_shard(shard)?;
        }
        Ok((self.finished, self.rows_hash))
    }
}

/// `part-00000.parquet`, `part-00001.parquet`, …
pub fn shard_file_name(index: usize) -> String {
    format!("part-{index:05}.parquet")
}
