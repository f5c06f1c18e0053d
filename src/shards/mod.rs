//! Shards and manifests: the on-disk format every dataset is written in.
//!
//! Flow position: `stages` → **shards** → `query` / `loader`. A dataset directory holds
//! `manifest.json` and `shards/part-NNNNN.parquet`; the manifest is written last, so a directory without
//! one is never complete. `catalog` finds datasets under folders, `sample_list` is the frozen
//! selection `mplug select` writes: both live here so readers of datasets need not depend on SQL.

pub mod catalog;
pub mod commit;
pub mod grounding_rows;
pub mod image_columns;
pub mod manifest;
pub mod merge;
pub mod qa_rows;
pub mod reader;
pub mod rows;
pub mod rows_hash;
pub mod sample_list;
pub mod schema;
pub mod statement_rows;
pub mod verify;
pub mod writer;

pub use manifest::{Manifest, RejectRecord, ShardEntry};
pub use schema::SchemaSpec;
pub use writer::{ShardWriter, ShardWriterOptions};
