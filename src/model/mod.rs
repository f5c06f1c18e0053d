//! The mPLUG model in libtorch (reference §1), one concept per file:
//!
//! ```text
//! image ─▶ vit (CLIP ViT, ln_post on all tokens) ─▶ [visn_fc bridge] ─┐
//! text  ─▶ bert::TextEncoder (6 layers) ──────────────────────────────┴▶ fusion (skip rule) ─▶ [V; T]
//!                                                   decoder (causal + cross to [V; T]) ─▶ LM head
//! heads: ITC projections + temp, ITM, MLM          generate: greedy, the reference's beam search
//! ```
//!
//! Parameter names equal the original state-dict keys; [`weights`] holds the load-time transforms
//! and the allow-list of keys the original stores but never runs; [`io`] runs named modules on
//! tensors from a file (`mplug forward`).

pub mod attention;
pub mod bert;
pub mod config;
pub mod decoder;
pub mod fusion;
pub mod generate;
pub mod heads;
pub mod io;
pub mod layers;
pub mod mplug;
pub mod summary;
pub mod vit;
pub mod weights;

pub use config::MplugConfig;
pub use mplug::MplugModel;
