//! The trainable tasks, one file each ([`super::task::TrainTask`]).

pub mod caption;
pub mod caption_scst;
pub mod grounding;
pub mod pretrain;
pub mod statement;
pub mod vqa;
