//! Training: pre-training (`mplug train`: the reference's four objectives) and fine-tuning
//! (`mplug finetune TASK`) on one loop over the streaming loader, the reference's optimiser groups
//! and schedule, exact resume from atomic checkpoints. Each task is a [`task::TrainTask`] in
//! `tasks/`.
//!
//! ```text
//! config (YAML + --set) ─▶ trainer ─▶ loader batches ─▶ objectives (ITC/ITM/MLM/PrefixLM,
//!                                                        momentum model + queues)
//!                              └─▶ optim (AdamW groups, clip) · schedule (cosine, warm-up)
//!                              └─▶ checkpoint (atomic dir + `latest`) · metrics.jsonl · plot
//! ```

pub mod checkpoint;
pub mod config;
pub mod dist;
pub mod host_reads;
pub mod interval_metrics;
pub mod momentum;
pub mod objectives;
pub mod optim;
pub mod phases;
pub mod plot;
pub mod precision;
pub mod schedule;
pub mod task;
pub mod tasks;
pub mod trainer;
pub mod validation;

pub use config::TrainConfig;
pub use trainer::{TrainOptions, TrainSummary, train};
