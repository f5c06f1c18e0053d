//! The per-clip stage of a video ingest: hash → probe → sample indices → decode (seeking) → rotate →
//! resize → encode each frame.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::reader::{VideoError, decode_frames, probe};
use super::sampler::{FrameSampling, sample_indices};
use crate::stages::encode::{PixelCodec, encode_pixels};
use crate::stages::orient::apply_orientation;
use crate::stages::resize::{fit_within, resize_rgb};

/// How frames are sized for storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum FrameResize {
    /// Exactly `size`×`size`, aspect ratio not kept: what decord's `VideoReader(width=S, height=S)`
    /// gives the reference.
    Square,
    /// Longest side `size`, aspect ratio kept, never upscaled.
    Fit,
}

/// Video settings of a pipeline (the `[video]` table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VideoOptions {
    /// Frames per clip (N).
    pub num_frames: usize,
    /// Which frames.
    pub sampling: FrameSampling,
    /// Stored size in pixels (see `resize`).
    pub size: u32,
    /// Square (reference) or aspect-keeping.
    pub resize: FrameResize,
    /// Frame codec.
    pub codec: PixelCodec,
    /// JPEG quality when `codec = "jpeg"`.
    pub jpeg_quality: u8,
    /// Clips with fewer frames are rejected (default 1: any decodable clip is kept; shorter-than-N
    /// clips follow the sampling rule's repeat behaviour).
    pub min_frames: usize,
    /// Per-clip limit on probing + decoding, seconds.
    pub timeout_s: f64,
    /// Frames over this many pixels are rejected.
    pub max_pixels: u64,
}

impl Default for VideoOptions {
    fn default() -> Self {
        VideoOptions {
            num_frames: 12,
            sampling: FrameSampling::Uniform,
            size: 224,
            resize: FrameResize::Square,
            codec: PixelCodec::Jpeg,
            jpeg_quality: 95,
            min_frames: 1,
            timeout_s: 60.0,
            max_pixels: 89_478_485,
        }
    }
}

/// One processed clip.
#[derive(Debug, Clone)]
pub struct ProcessedClip {
    /// blake3 of the file (hex).
    pub source_blake3: String,
    /// blake3 over every stored frame's decoded pixels before encoding (hex).
    pub pixel_blake3: String,
    /// Frames in the clip.
    pub num_frames_total: usize,
    /// Declared frame rate.
    pub fps: f64,
    /// Duration, seconds.
    pub duration_s: f64,
    /// Displayed size (after rotation).
    pub orig_width: u32,
    /// Displayed size (after rotation).
    pub orig_height: u32,
    /// Clockwise rotation applied from the display matrix.
    pub rotation: u32,
    /// Codec name.
    pub video_codec: String,
    /// Whether the clip has a variable frame rate.
    pub variable_frame_rate: bool,
    /// Stored frame size.
    pub width: u32,
    /// Stored frame size.
    pub height: u32,
    /// Frame indices (presentation order).
    pub frame_indices: Vec<i64>,
    /// Frame times, seconds from the first frame.
    pub frame_times: Vec<f64>,
    /// Encoded frames.
    pub frames: Vec<Vec<u8>>,
}

/// Clockwise rotation → the EXIF orientation that applies it.
pub fn rotation_to_exif(rotation: u32) -> u8 {
    match rotation {
        90 => 6,
        180 => 3,
        270 => 8,
        _ => 1,
    }
}

/// Turns video files into sampled frames.
#[derive(Debug, Clone)]
pub struct VideoStage {
    /// Settings.
    pub options: VideoOptions,
}

impl VideoStage {
    /// Processes one file. The outer error is a bug (encoding failed); the inner one a reject reason.
    pub fn process(&self, path: &Path) -> crate::Result<Result<ProcessedClip, VideoError>> {
        let o = &self.options;
        let start = Instant::now();
        let deadline = start + Duration::from_secs_f64(o.timeout_s.max(0.001));
        let source_blake3 = match hash_file(path) {
            Ok(h) => h,
            Err(e) => return Ok(Err(VideoError::Open(e.to_string()))),
        };
        let info = match probe(path, deadline, o.timeout_s) {
            Ok(i) => i,
            Err(e) => return Ok(Err(e)),
        };
        if u64::from(info.width) * u64::from(info.height) > o.max_pixels {
            return Ok(Err(VideoError::TooLarge(
                info.width,
                info.height,
                o.max_pixels,
            )));
        }
        if info.num_frames < o.min_frames {
            return Ok(Err(VideoError::Decode(format!(
                "clip has {} frames, fewer than min_frames = {}",
                info.num_frames, o.min_frames
            ))));
        }
        let indices = sample_indices(o.sampling, o.num_frames, &info.times_s);
        let decoded = match decode_frames(path, &info, &indices, true, deadline, o.timeout_s) {
            Ok(f) => f,
            Err(e) => return Ok(Err(e)),
        };
        let orientation = rotation_to_exif(info.rotation);
        let mut hasher = blake3::Hasher::new();
        let mut frames = Vec::with_capacity(decoded.len());
        let (mut orig_w, mut orig_h, mut out_w, mut out_h) = (0, 0, 0, 0);
        for rgb in decoded {
            let rgb = apply_orientation(rgb, orientation);
            hasher.update(&rgb.width.to_le_bytes());
            hasher.update(&rgb.height.to_le_bytes());
            hasher.update(&rgb.pixels);
            (orig_w, orig_h) = (rgb.width, rgb.height);
            let (w, h) = match o.resize {
                FrameResize::Square => (o.size, o.size),
                FrameResize::Fit => fit_within(rgb.width, rgb.height, o.size),
            };
            let small = resize_rgb(&rgb, w, h);
            (out_w, out_h) = (w, h);
            frames.push(encode_pixels(&small, o.codec, o.jpeg_quality)?);
        }
        Ok(Ok(ProcessedClip {
            source_blake3,
            pixel_blake3: hasher.finalize().to_hex().to_string(),
            num_frames_total: info.num_frames,
            fps: info.fps,
            duration_s: info.duration_s,
            orig_width: orig_w,
            orig_height: orig_h,
            rotation: info.rotation,
            video_codec: info.codec.clone(),
            variable_frame_rate: info.variable_frame_rate,
            width: out_w,
            height: out_h,
            frame_times: indices.iter().map(|&i| info.times_s[i]).collect(),
            frame_indices: indices.iter().map(|&i| i as i64).collect(),
            frames,
        }))
    }
}

fn hash_file(path: &Path) -> std::io::Result<String> {
    let mut hasher = blake3::Hasher::new();
    let mut f = crate::sources::files::open_regular_file(path)?;
    std::io::copy(&mut f, &mut hasher)?;
    Ok(hasher.finalize().to_hex().to_string())
}
