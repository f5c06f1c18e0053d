//! Sources: raw dataset files → typed samples, plus the records they reject.
//!
//! Flow position: **sources** → `stages` → `shards`. A source reads annotation files (small enough to
//! hold in memory), validates every record and groups them into samples; pixels are read later, in
//! parallel, by the stages.

pub mod coco;
pub mod collect;
pub mod files;
pub mod flickr;
pub mod image_root;
pub mod json;
#[cfg(feature = "video")]
pub mod msrvtt;
#[cfg(feature = "video")]
pub mod msvd_qa;
pub mod refcoco;
pub mod statements;
pub mod url_images;
#[cfg(feature = "video")]
pub mod vatex;
pub mod vg;
#[cfg(feature = "video")]
pub mod video;
pub mod vqa;
pub mod web;

pub use image_root::ImageRoot;

use crate::error::Result;
use crate::shards::manifest::{RejectRecord, SourceFile};

/// An image with its captions, ready for the image and text stages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptionSample {
    /// Image id as the annotations give it (or the path when they give none).
    pub image_id: String,
    /// Split name.
    pub split: String,
    /// Image path relative to the image root, '/'-separated, checked not to escape it.
    pub source_path: String,
    /// The captions (strings, not yet normalised), in annotation order.
    pub captions: Vec<String>,
}

/// What a source read: samples, rejected records and the files read.
#[derive(Debug, Clone, Default)]
pub struct SourceOutput<S> {
    /// Valid samples in a deterministic order (first appearance in the files, in the order given).
    pub samples: Vec<S>,
    /// Records rejected while reading annotations.
    pub rejects: Vec<RejectRecord>,
    /// Annotation files with size and hash.
    pub files: Vec<SourceFile>,
}

/// A dataset reader.
pub trait Source {
    /// The sample type it yields.
    type Sample;
    /// Reads and validates every annotation file. Malformed files are errors; bad records are rejects.
    fn read(&self) -> Result<SourceOutput<Self::Sample>>;
}
