//! Video: reading clips with the FFmpeg libraries and turning them into sampled, resized frames.
//!
//! [`reader`] probes and decodes (seeking to keyframes), [`sampler`] chooses frame indices (the
//! reference's `uniform` rule and two others), [`stage`] is the per-clip stage of a video ingest.

pub mod reader;
pub mod sampler;
pub mod stage;
