//! Reading clips with the FFmpeg libraries (`ffmpeg-next`): probe, then decode chosen frames.
//!
//! Probing demuxes every packet of the video stream *without decoding* (cheap): the sorted packet
//! timestamps are the presentation times of the frames, which gives the exact frame count, each
//! frame's time (also for variable frame rates) and the keyframes. Decoding then seeks to the
//! keyframe before each wanted frame when that skips work, and otherwise decodes on; a frame is
//! identified by its timestamp, so the seeking path returns exactly the frames a full decode would
//! (tested). Files without timestamps fall back to decoding every frame in order.

use std::path::Path;
use std::sync::Once;
use std::time::Instant;

use ffmpeg_next as ffmpeg;

use ffmpeg::format::Pixel;
use ffmpeg::packet::Ref as _;
use ffmpeg::software::scaling;

use crate::stages::decode::RgbImage;

/// Why a clip cannot be read. These become reject reasons.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VideoError {
    /// The file has no bytes.
    #[error("empty file (0 bytes)")]
    Empty,
    /// FFmpeg cannot open or parse the container.
    #[error("not a readable media file: {0}")]
    Open(String),
    /// The container has no video stream.
    #[error("no video stream (streams: {0})")]
    NoVideoStream(String),
    /// No decoder for the stream's codec in this FFmpeg build.
    #[error("unsupported video codec `{0}` (no decoder in this FFmpeg build)")]
    UnsupportedCodec(String),
    /// The stream has no frames.
    #[error("video stream has no frames")]
    NoFrames,
    /// Frame size over the pixel limit.
    #[error("frames are {0}x{1}, over the pixel limit {2}")]
    TooLarge(u32, u32, u64),
    /// The decoder failed (truncated or corrupt data).
    #[error("decode failed: {0}")]
    Decode(String),
    /// The per-clip time limit passed.
    #[error("decode took longer than the {0:.0} s per-clip limit")]
    Timeout(f64),
}

fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let _ = ffmpeg::init();
        ffmpeg::util::log::set_level(ffmpeg::util::log::Level::Fatal);
    });
}

/// What probing found.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipInfo {
    /// Frames in the video stream (packets, i.e. what decord calls `len(vr)`).
    pub num_frames: usize,
    /// Presentation time of each frame, seconds from the first one, ascending.
    pub times_s: Vec<f64>,
    /// Average frame rate: (frames − 1) / (last time − first time); the declared rate for 1 frame.
    pub fps: f64,
    /// Duration in seconds (container's, else from the frame times).
    pub duration_s: f64,
    /// Coded frame size.
    pub width: u32,
    /// Coded frame size.
    pub height: u32,
    /// Display rotation, clockwise degrees (0, 90, 180, 270) from the display matrix.
    pub rotation: u32,
    /// Codec name.
    pub codec: String,
    /// Whether frame intervals differ by more than 1 %.
    pub variable_frame_rate: bool,
    pts: Vec<i64>,
    /// For each frame (presentation order), the index of the last keyframe at or before it.
    keyframe_before: Vec<usize>,
    has_timestamps: bool,
}

fn open(path: &Path) -> Result<(ffmpeg::format::context::Input, usize), VideoError> {
    init();
    match std::fs::metadata(path) {
        Ok(m) if m.len() == 0 => return Err(VideoError::Empty),
        Ok(_) => {}
        Err(e) => return Err(VideoError::Open(e.to_string())),
    }
    let input = ffmpeg::format::input(path).map_err(|e| VideoError::Open(e.to_string()))?;
    let Some(stream) = input.streams().best(ffmpeg::media::Type::Video) else {
        let kinds: Vec<String> = input
            .streams()
            .map(|s| format!("{:?}", s.parameters().medium()).to_lowercase())
            .collect();
        let kinds = if kinds.is_empty() {
            "none".to_string()
        } else {
            kinds.join(", ")
        };
        return Err(VideoError::NoVideoStream(kinds));
    };
    let index = stream.index();
    Ok((input, index))
}

fn decoder_for(
    input: &ffmpeg::format::context::Input,
    index: usize,
) -> Result<ffmpeg::decoder::Video, VideoError> {
    let stream = input.stream(index).ok_or(VideoError::NoFrames)?;
    let params = stream.parameters();
    let id = params.id();
    if ffmpeg::decoder::find(id).is_none() {
        // SAFETY: reading a plain field of the stream's live codec parameters
        let tag = unsafe { (*params.as_ptr()).codec_tag }.to_le_bytes();
        let fourcc: String = tag
            .iter()
            .map(|&b| if b.is_ascii_graphic() { b as char } else { '.' })
            .collect();
        let name = format!("{id:?}").to_lowercase();
        return Err(VideoError::UnsupportedCodec(format!(
            "{name} (fourcc {fourcc})"
        )));
    }
    let mut ctx = ffmpeg::codec::context::Context::from_parameters(params)
        .map_err(|e| VideoError::Open(e.to_string()))?;
    // one thread per clip: clips are decoded in parallel by the engine, and frame threading would
    // add latency and nondeterministic scheduling for nothing
    ctx.set_threading(ffmpeg::threading::Config {
        kind: ffmpeg::threading::Type::None,
        count: 1,
        ..Default::default()
    });
    ctx.decoder()
        .video()
        .map_err(|e| VideoError::UnsupportedCodec(format!("{id:?}: {e}").to_lowercase()))
}

fn rotation_of(stream: &ffmpeg::format::stream::Stream) -> u32 {
    for side in stream.side_data() {
        if side.kind() == ffmpeg::codec::packet::side_data::Type::DisplayMatrix
            && side.data().len() >= 36
        {
            // SAFETY: the display matrix is 9 native-endian i32 (36 bytes), checked above;
            // av_display_rotation_get only reads them.
            let angle =
                unsafe { ffmpeg::ffi::av_display_rotation_get(side.data().as_ptr() as *const i32) };
            if angle.is_nan() {
                return 0;
            }
            // av_display_rotation_get is counter-clockwise; playback rotates by its negation
            let cw = (-angle).round() as i64;
            return (cw.rem_euclid(360) as u32 / 90 % 4) * 90;
        }
    }
    0
}

/// Probes a clip: frame count, times, keyframes, size, rotation. Demuxes, does not decode.
pub fn probe(path: &Path, deadline: Instant, timeout_s: f64) -> Result<ClipInfo, VideoError> {
    let (mut input, index) = open(path)?;
    let decoder = decoder_for(&input, index)?;
    let stream = input.stream(index).ok_or(VideoError::NoFrames)?;
    let tb = stream.time_base();
    let tb_s = f64::from(tb.numerator()) / f64::from(tb.denominator().max(1));
    let rotation = rotation_of(&stream);
    let avg = stream.avg_frame_rate();
    let declared_fps = if avg.denominator() > 0 && avg.numerator() > 0 {
        f64::from(avg.numerator()) / f64::from(avg.denominator())
    } else {
        0.0
    };
    let stream_duration = if stream.duration() > 0 {
        stream.duration() as f64 * tb_s
    } else {
        0.0
    };
    let container_duration = if input.duration() > 0 {
        input.duration() as f64 / f64::from(ffmpeg::ffi::AV_TIME_BASE)
    } else {
        0.0
    };
    let codec = format!("{:?}", decoder.id()).to_lowercase();
    let (width, height) = (decoder.width(), decoder.height());
    let mut entries: Vec<(Option<i64>, bool)> = Vec::new();
    let mut packet = ffmpeg::Packet::empty();
    loop {
        match packet.read(&mut input) {
            Ok(()) => {}
            Err(ffmpeg::Error::Eof) => break,
            // a truncated or corrupt tail: keep what was read; decoding will tell
            Err(_) => break,
        }
        // packets outside the edit list (MP4 `elst`) are dropped by the decoder: not frames
        // SAFETY: reading a plain int field of a live packet (ffmpeg-next's Flags drops this bit)
        let discard = unsafe { (*packet.as_ptr()).flags } & ffmpeg::ffi::AV_PKT_FLAG_DISCARD != 0;
        if packet.stream() != index || discard {
            continue;
        }
        if Instant::now() > deadline {
            return Err(VideoError::Timeout(timeout_s));
        }
        entries.push((packet.pts().or(packet.dts()), packet.is_key()));
    }
    if entries.is_empty() {
        return Err(VideoError::NoFrames);
    }
    let has_timestamps = entries.iter().all(|(p, _)| p.is_some());
    let (pts, keys): (Vec<i64>, Vec<bool>) = if has_timestamps {
        let mut sorted: Vec<(i64, bool)> =
            entries.iter().map(|(p, k)| (p.unwrap_or(0), *k)).collect();
        sorted.sort_by_key(|(p, _)| *p);
        sorted.dedup_by_key(|(p, _)| *p);
        sorted.into_iter().unzip()
    } else {
        let fake: Vec<i64> = (0..entries.len() as i64).collect();
        (fake, entries.iter().map(|(_, k)| *k).collect())
    };
    let first = pts[0];
    let step = if declared_fps > 0.0 {
        1.0 / declared_fps
    } else {
        0.04
    };
    let times_s: Vec<f64> = if has_timestamps {
        pts.iter().map(|p| (p - first) as f64 * tb_s).collect()
    } else {
        (0..pts.len()).map(|i| i as f64 * step).collect()
    };
    let mut keyframe_before = Vec::with_capacity(pts.len());
    let mut last_key = 0;
    for (i, k) in keys.iter().enumerate() {
        if *k {
            last_key = i;
        }
        keyframe_before.push(last_key);
    }
    let intervals: Vec<f64> = times_s.windows(2).map(|w| w[1] - w[0]).collect();
    let variable_frame_rate = match (
        intervals.iter().cloned().reduce(f64::min),
        intervals.iter().cloned().reduce(f64::max),
    ) {
        (Some(lo), Some(hi)) => hi - lo > 0.01 * hi.max(1e-9),
        _ => false,
    };
    let n = times_s.len();
    let last = times_s[n - 1];
    let duration_s = if container_duration > 0.0 {
        container_duration
    } else if stream_duration > 0.0 {
        stream_duration
    } else {
        last + step
    };
    // the average rate the frames are actually shown at: (n − 1) intervals over their span. The
    // container's avg_frame_rate can be off (MP4: frames over a duration that omits the last frame).
    let fps = if n > 1 && last > 0.0 && has_timestamps {
        (n - 1) as f64 / last
    } else if declared_fps > 0.0 {
        declared_fps
    } else {
        0.0
    };
    Ok(ClipInfo {
        num_frames: n,
        times_s,
        fps,
        duration_s,
        width,
        height,
        rotation,
        codec,
        variable_frame_rate,
        pts,
        keyframe_before,
        has_timestamps,
    })
}

/// Work done by [`decode_frames`], to check that seeking pays off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecodeStats {
    /// Frames the decoder produced (wanted or not).
    pub frames_decoded: usize,
    /// Seeks to a keyframe.
    pub seeks: usize,
    /// Rewinds to the start after a frame was missed following a seek.
    pub rewinds: usize,
}

/// Decodes the frames at `indices` (presentation order, any order, repeats allowed) to RGB at the
/// coded size. `seek` allows seeking to keyframes (the result is the same either way).
pub fn decode_frames(
    path: &Path,
    info: &ClipInfo,
    indices: &[usize],
    seek: bool,
    deadline: Instant,
    timeout_s: f64,
) -> Result<Vec<RgbImage>, VideoError> {
    decode_frames_with_stats(path, info, indices, seek, deadline, timeout_s).map(|(f, _)| f)
}

/// [`decode_frames`] plus what it cost.
pub fn decode_frames_with_stats(
    path: &Path,
    info: &ClipInfo,
    indices: &[usize],
    seek: bool,
    deadline: Instant,
    timeout_s: f64,
) -> Result<(Vec<RgbImage>, DecodeStats), VideoError> {
    let mut stats = DecodeStats::default();
    let (mut input, index) = open(path)?;
    let mut decoder = decoder_for(&input, index)?;
    let tb = input
        .stream(index)
        .map(|s| s.time_base())
        .ok_or(VideoError::NoFrames)?;
    let mut wanted: Vec<usize> = indices.to_vec();
    wanted.sort_unstable();
    wanted.dedup();
    let seek = seek && info.has_timestamps;
    let mut frames: std::collections::HashMap<usize, RgbImage> = Default::default();
    let mut scaler: Option<(scaling::Context, Pixel, u32, u32)> = None;
    let mut packet = ffmpeg::Packet::empty();
    let mut eof_sent = false;
    let mut decoded = ffmpeg::frame::Video::empty();
    // presentation index of the last frame returned, and the count for timestamp-less files
    let mut last_index: Option<usize> = None;
    let mut counter = 0usize;
    // Seeking is an optimisation: if a frame is missing after a seek (some h264 streams need
    // frames before the keyframe the container marks, e.g. open GOPs), decode again from the start
    // without seeking, so the result always equals a full decode.
    let mut seek = seek;
    let mut since_seek = false;
    let mut i = 0;
    while i < wanted.len() {
        let target = wanted[i];
        if target >= info.num_frames {
            return Err(VideoError::Decode(format!(
                "frame {target} beyond the clip's {}",
                info.num_frames
            )));
        }
        let key = info.keyframe_before[target];
        let behind = match last_index {
            None => key > 0,
            Some(l) => l + 1 < key,
        };
        if seek && behind {
            let pts = info.pts[key];
            // stream time base → AV_TIME_BASE (µs), rounded up so the keyframe itself is ≤ max
            let num = i128::from(pts) * i128::from(tb.numerator()) * 1_000_000;
            let den = i128::from(tb.denominator().max(1));
            let ts = ((num + den - 1).div_euclid(den)) as i64;
            input
                .seek(ts, ..ts + 1)
                .map_err(|e| VideoError::Decode(format!("seek to frame {key}: {e}")))?;
            decoder = decoder_for(&input, index)?;
            eof_sent = false;
            since_seek = true;
            stats.seeks += 1;
        }
        match next_wanted_frame(
            &mut input,
            index,
            &mut decoder,
            &mut packet,
            &mut decoded,
            &mut eof_sent,
            info,
            target,
            &mut last_index,
            &mut counter,
            &mut stats,
            deadline,
            timeout_s,
        )? {
            Some(()) => {
                frames.insert(target, to_rgb(&decoded, &mut scaler)?);
                i += 1;
            }
            None if since_seek => {
                // missed after a seek: rewind and decode everything from the first frame
                input
                    .seek(i64::MIN, ..)
                    .map_err(|e| VideoError::Decode(format!("rewind: {e}")))?;
                decoder = decoder_for(&input, index)?;
                eof_sent = false;
                seek = false;
                since_seek = false;
                stats.rewinds += 1;
                last_index = None;
                counter = 0;
            }
            None => {
                return Err(VideoError::Decode(format!(
                    "stream ended before frame {target} of {} (truncated file?)",
                    info.num_frames
                )));
            }
        }
    }
    let out = indices
        .iter()
        .map(|i| {
            frames
                .get(i)
                .cloned()
                .unwrap_or_else(|| unreachable!("every wanted frame was decoded"))
        })
        .collect();
    Ok((out, stats))
}

/// Decodes until the frame at presentation index `target` is in `decoded` (`Some`), or the stream
/// passes it or ends (`None`).
#[allow(clippy::too_many_arguments)]
fn next_wanted_frame(
    input: &mut ffmpeg::format::context::Input,
    index: usize,
    decoder: &mut ffmpeg::decoder::Video,
    packet: &mut ffmpeg::Packet,
    decoded: &mut ffmpeg::frame::Video,
    eof_sent: &mut bool,
    info: &ClipInfo,
    target: usize,
    last_index: &mut Option<usize>,
    counter: &mut usize,
    stats: &mut DecodeStats,
    deadline: Instant,
    timeout_s: f64,
) -> Result<Option<()>, VideoError> {
    loop {
        if Instant::now() > deadline {
            return Err(VideoError::Timeout(timeout_s));
        }
        if decoder.receive_frame(decoded).is_ok() {
            stats.frames_decoded += 1;
            let idx = if info.has_timestamps {
                let ts = decoded.timestamp().or(decoded.pts());
                match ts.and_then(|t| info.pts.binary_search(&t).ok()) {
                    Some(i) => i,
                    None => continue, // a frame we did not index
                }
            } else {
                *counter += 1;
                *counter - 1
            };
            *last_index = Some(idx);
            match idx.cmp(&target) {
                std::cmp::Ordering::Less => continue,
                std::cmp::Ordering::Equal => return Ok(Some(())),
                std::cmp::Ordering::Greater => return Ok(None),
            }
        }
        if *eof_sent {
            return Ok(None);
        }
        match packet.read(input) {
            Ok(()) => {
                if packet.stream() == index {
                    decoder
                        .send_packet(packet)
                        .map_err(|e| VideoError::Decode(e.to_string()))?;
                }
            }
            Err(_) => {
                let _ = decoder.send_eof();
                *eof_sent = true;
            }
        }
    }
}

fn to_rgb(
    frame: &ffmpeg::frame::Video,
    scaler: &mut Option<(scaling::Context, Pixel, u32, u32)>,
) -> Result<RgbImage, VideoError> {
    let (fmt, w, h) = (frame.format(), frame.width(), frame.height());
    let stale = !matches!(scaler, Some((_, f, sw, sh)) if *f == fmt && *sw == w && *sh == h);
    if stale {
        // exact conversion at the coded size; resizing happens later with the image pipeline's
        // Pillow-compatible bicubic
        let ctx = scaling::Context::get(
            fmt,
            w,
            h,
            Pixel::RGB24,
            w,
            h,
            scaling::Flags::BICUBIC | scaling::Flags::ACCURATE_RND | scaling::Flags::FULL_CHR_H_INT,
        )
        .map_err(|e| VideoError::Decode(format!("no conversion from {fmt:?}: {e}")))?;
        *scaler = Some((ctx, fmt, w, h));
    }
    let Some((ctx, ..)) = scaler.as_mut() else {
        unreachable!("scaler was just created")
    };
    let mut rgb = ffmpeg::frame::Video::empty();
    ctx.run(frame, &mut rgb)
        .map_err(|e| VideoError::Decode(e.to_string()))?;
    let stride = rgb.stride(0);
    let data = rgb.data(0);
    let row = w as usize * 3;
    let mut pixels = Vec::with_capacity(row * h as usize);
    for y in 0..h as usize {
        pixels.extend_from_slice(&data[y * stride..y * stride + row]);
    }
    Ok(RgbImage {
        width: w,
        height: h,
        pixels,
    })
}
