//! SQL over every ingested dataset (DataFusion), and SQL-defined sample lists.
//!
//! Flow position: `shards` → **query** (read-only). Each dataset directory found under the data roots
//! (by its `manifest.json`, `shards::catalog`) becomes a table named after the dataset; `datasets`, `shards` and `rejects`
//! tables are built from the manifests. Queries that do not name the pixel column never read it
//! (Parquet projection pushdown).

#[cfg(feature = "cluster")]
pub mod cluster;
pub mod freeze;
#[cfg(feature = "cluster")]
pub mod memtable_codec;
pub mod output;
pub mod session;
pub mod udf;

pub use crate::shards::catalog::{DatasetEntry, discover_datasets};
pub use session::{QuerySession, SqlPolicy};
