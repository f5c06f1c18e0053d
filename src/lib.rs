//! # mplug
//!
//! A data-pipeline-first reimplementation of mPLUG (EMNLP 2022). The tree follows the data flow:
//!
//! ```text
//!  raw files ──▶ sources ──▶ stages (decode · orient · resize · encode · tokenize) ──▶ shards + manifest
//!   (COCO…)     Source       ImageStage, BertTokenizer          ShardWriter, Manifest
//!                    └──────────────── engine: ordered parallel map, bounded queues ───┘
//! ```
//!
//! * [`download`]: the resumable downloader of URL datasets (CC3M, CC12M, SBU).
//! * [`sources`]: annotation files → validated samples and rejects ([`sources::coco::CocoSource`]).
//! * [`stages`]: per-sample pixel work ([`stages::ImageStage`]).
//! * [`text`]: the reference's caption normalisation and the BERT WordPiece tokenizer (and the
//!   special token ids).
//! * [`video`]: FFmpeg probing/decoding with keyframe seeks and frame samplers (cargo feature `video`).
//! * [`engine`]: the dataflow runner ([`engine::run_ordered`]) and progress bars.
//! * [`shards`]: Parquet shards, manifests, atomic commits, verification.
//! * [`ingest`]: pipeline files, the dataset registry ([`ingest::datasets`]), ingest plans and the
//!   generic ingest job wiring the above together.
//! * [`query`]: DataFusion SQL over datasets, UDFs, frozen sample lists.
//! * [`leakage`]: evaluation images found in training data (dHash), exclusion lists.
//! * [`loader`]: the streaming, deterministic, resumable loader feeding libtorch.
//! * [`synth`]: the synthetic shapes-world generator used by the demo and tests.
//! * [`model`]: the mPLUG model in libtorch (CLIP ViT, BERT, fusion with the skip rule, decoder,
//!   heads, generation) with the original parameter names; [`pickle`]: safe pickle/torch-checkpoint reader.
//! * [`train`]: pre-training (objectives, momentum model, AdamW, checkpoints, held-out metrics).
//! * [`eval`]: the official metrics and the evaluator (`mplug eval`: inference per task, result files).
//! * [`show`]: contact sheets of datasets and predictions (`mplug show`).
//! * [`device`]: libtorch checks; [`error`]: the typed errors every module returns.
//! * [`cli`]: the command line (the only module that knows all the others).

#[macro_use]
mod simd;

pub mod cli;
pub mod device;
pub mod download;
pub mod engine;
pub mod error;
pub mod eval;
pub mod ingest;
pub mod leakage;
pub mod loader;
pub mod model;
pub mod pickle;
pub mod query;
pub mod shards;
pub mod show;
pub mod sources;
pub mod stages;
pub mod synth;
pub mod text;
pub mod train;
#[cfg(feature = "video")]
pub mod video;

pub use error::{Error, Result};
