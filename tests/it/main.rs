//! The integration tests: one binary, one module per area, so CI links libtorch, DataFusion and
//! FFmpeg once instead of once per file. Run one area with `cargo test --test it sql::`.
//!
//! Every module drives the built `mplug` binary or the library against independent oracles (the
//! project venv's Python: pyarrow, DuckDB, Pillow, PyTorch, tokenizers); `common` holds the helpers.

mod common;

mod cli;
mod datasets;
mod distributed;
mod download;
mod eval;
mod eval_run;
mod finetune;
mod finetune_grounding;
mod finetune_scst;
mod hostile;
mod ingest;
mod loader;
mod loader_shutdown;
mod merge;
mod model;
mod show;
mod sql;
#[cfg(feature = "cluster")]
mod sql_cluster;
mod sql_logic;
mod sync_free;
mod train;
mod train_step;
#[cfg(feature = "video")]
mod video;
