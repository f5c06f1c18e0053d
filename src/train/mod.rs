//! Pre-training (`mplug train`): the reference's four objectives over the streaming loader, its
//! optimiser groups and schedule, exact resume from atomic checkpoints.
//!
//! ```text
//! config (YAML + --set) ─▶ trainer ─▶ loader batches ─▶ objectives (ITC/ITM/MLM/PrefixLM,
//!                                                        momentum model + queues)
//!                              └─▶ optim (AdamW groups, clip) · schedule (cosine, warm-up)
//!                              └─▶ checkpoint (atomic dir + `latest`) · metrics.jsonl · plot
//! ```

pub mod checkpoint;
pub mod config;
pub mod heldout;
pub mod momentum;
pub mod objectives;
pub mod optim;
pub mod phases;
pub mod plot;
pub mod precision;
pub mod schedule;
pub mod trainer;

pub use config::TrainConfig;
pub use trainer::{TrainOptions, TrainSummary, train};
