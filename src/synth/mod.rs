//! `mplug synth`: a deterministic "shapes world" written in the datasets' original raw formats.
//!
//! Every image shows a few coloured shapes on a plain background; every caption describes what is
//! visible (colours, shapes, counts, positions), so the data stays learnable for ITC/ITM/MLM. The files
//! cover the decoding cases real datasets hold: baseline and progressive JPEG, grayscale and CMYK JPEG,
//! EXIF-rotated JPEG, RGB and RGBA PNG. The same images are also described in the downstream tasks'
//! formats (`vqa_files`: VQA v2 questions and ten answers each; `statement_files`: SNLI-VE and NLVR2; `refcoco_files`: RefCOCO refs pickle + instances with
//! every shape's box). Same seed → same bytes.

pub mod files;
pub mod raster;
pub mod refcoco_files;
pub mod rng;
pub mod scene;
pub mod statement_files;
#[cfg(feature = "video")]
pub mod video;
#[cfg(feature = "video")]
pub mod video_dataset;
pub mod vqa_files;

pub use files::{SynthOptions, SynthSummary, write_synth_dataset};
