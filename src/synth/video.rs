//! Synthetic clips for tests, the demo and benchmarks: a coloured square moving across a dark
//! background, encoded with the FFmpeg libraries as h264/mp4, vp9/webm or mjpeg/avi. The square's
//! position is a pure function of the frame's presentation time ([`square_at`]), so a test can check
//! that a decoded frame shows the square where its timestamp says.

use std::path::Path;

use ffmpeg_next as ffmpeg;

use ffmpeg::format::Pixel;
use ffmpeg::software::scaling;

use crate::error::{Error, Result};
use crate::stages::decode::RgbImage;
use crate::stages::orient::{apply_orientation, inverse_orientation};
use crate::video::stage::rotation_to_exif;

/// Container and codec of a clip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClipFormat {
    /// H.264 (libx264, B-frames on) in MP4.
    Mp4H264,
    /// VP9 (libvpx) in WebM.
    WebmVp9,
    /// Motion JPEG in AVI (every frame a keyframe).
    AviMjpeg,
}

impl ClipFormat {
    /// File extension.
    pub fn extension(self) -> &'static str {
        match self {
            ClipFormat::Mp4H264 => "mp4",
            ClipFormat::WebmVp9 => "webm",
            ClipFormat::AviMjpeg => "avi",
        }
    }
}

/// What to draw and how to encode it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipSpec {
    /// Frames.
    pub frames: usize,
    /// Nominal frame rate.
    pub fps: u32,
    /// Displayed width.
    pub width: u32,
    /// Displayed height.
    pub height: u32,
    /// Container/codec.
    pub format: ClipFormat,
    /// Keyframe interval in frames.
    pub gop: u32,
    /// Display rotation written to the container (clockwise degrees: 0, 90, 180, 270; MP4 only).
    pub rotation: u32,
    /// Variable frame rate: frame intervals alternate 1× and 2× the nominal one.
    pub variable_frame_rate: bool,
    /// Square colour.
    pub colour: [u8; 3],
    /// Moves right (else left).
    pub rightwards: bool,
}

/// Side of the square, pixels.
pub const SQUARE_PX: u32 = 16;

/// Presentation time of frame `i`, seconds.
pub fn frame_time(spec: &ClipSpec, i: usize) -> f64 {
    let base = 1.0 / f64::from(spec.fps);
    if spec.variable_frame_rate {
        // intervals 1, 2, 1, 2, … × base
        let pairs = i / 2;
        (pairs as f64 * 3.0 + (i % 2) as f64) * base
    } else {
        i as f64 * base
    }
}

/// Top-left corner of the square at time `t` (displayed coordinates): it crosses the frame once in
/// 2 seconds, vertically centred.
pub fn square_at(spec: &ClipSpec, t: f64) -> (f64, f64) {
    let travel = f64::from(spec.width - SQUARE_PX);
    let p = (t / 2.0).fract();
    let x = if spec.rightwards {
        p * travel
    } else {
        (1.0 - p) * travel
    };
    (x, f64::from(spec.height - SQUARE_PX) / 2.0)
}

/// The displayed picture at time `t`.
pub fn render(spec: &ClipSpec, t: f64) -> RgbImage {
    let (w, h) = (spec.width, spec.height);
    let mut pixels = vec![0u8; (w * h * 3) as usize];
    for y in 0..h {
        for x in 0..w {
            let o = ((y * w + x) * 3) as usize;
            let g = 24 + (16 * y / h.max(1)) as u8; // faint vertical gradient
            pixels[o..o + 3].copy_from_slice(&[g, g, g + 8]);
        }
    }
    let (sx, sy) = square_at(spec, t);
    let (sx, sy) = (sx.round() as u32, sy.round() as u32);
    for y in sy..(sy + SQUARE_PX).min(h) {
        for x in sx..(sx + SQUARE_PX).min(w) {
            let o = ((y * w + x) * 3) as usize;
            pixels[o..o + 3].copy_from_slice(&spec.colour);
        }
    }
    RgbImage {
        width: w,
        height: h,
        pixels,
    }
}

fn ff(e: ffmpeg::Error, what: &str) -> Error {
    Error::internal_caused(format!("synthetic video: {what}"), e)
}

/// Encodes the clip to `path` (single-threaded encoders: same spec, same bytes).
pub fn write_clip(path: &Path, spec: &ClipSpec) -> Result<()> {
    let _ = ffmpeg::init();
    ffmpeg::util::log::set_level(ffmpeg::util::log::Level::Fatal);
    let (enc_name, pix) = match spec.format {
        ClipFormat::Mp4H264 => ("libx264", Pixel::YUV420P),
        ClipFormat::WebmVp9 => ("libvpx-vp9", Pixel::YUV420P),
        ClipFormat::AviMjpeg => ("mjpeg", Pixel::YUVJ420P),
    };
    let codec = ffmpeg::encoder::find_by_name(enc_name)
        .ok_or_else(|| Error::internal(format!("FFmpeg has no `{enc_name}` encoder")))?;
    let orientation = rotation_to_exif(spec.rotation);
    // stored pixels are the displayed ones turned back, so playback with rotation shows `render`
    let stored_size = if spec.rotation % 180 == 90 {
        (spec.height, spec.width)
    } else {
        (spec.width, spec.height)
    };
    let mut octx = ffmpeg::format::output(path).map_err(|e| ff(e, "output"))?;
    let global = octx
        .format()
        .flags()
        .contains(ffmpeg::format::Flags::GLOBAL_HEADER);
    let time_base = ffmpeg::Rational::new(1, 1000 * spec.fps as i32);
    let ctx = ffmpeg::codec::context::Context::new_with_codec(codec);
    let mut enc = ctx.encoder().video().map_err(|e| ff(e, "encoder"))?;
    enc.set_width(stored_size.0);
    enc.set_height(stored_size.1);
    enc.set_format(pix);
    enc.set_time_base(time_base);
    enc.set_frame_rate(Some(ffmpeg::Rational::new(spec.fps as i32, 1)));
    enc.set_gop(spec.gop);
    if spec.format == ClipFormat::Mp4H264 {
        enc.set_max_b_frames(2);
    }
    if global {
        enc.set_flags(ffmpeg::codec::Flags::GLOBAL_HEADER);
    }
    let mut opts = ffmpeg::Dictionary::new();
    opts.set("threads", "1");
    opts.set("flags", "+bitexact");
    match spec.format {
        ClipFormat::Mp4H264 => {
            opts.set("preset", "superfast");
            opts.set("x264-params", "scenecut=0");
        }
        ClipFormat::WebmVp9 => {
            opts.set("deadline", "realtime");
            opts.set("cpu-used", "8");
            opts.set("lag-in-frames", "0");
        }
        ClipFormat::AviMjpeg => {}
    }
    let mut encoder = enc
        .open_as_with(codec, opts)
        .map_err(|e| ff(e, "open encoder"))?;
    {
        let mut ost = octx.add_stream(codec).map_err(|e| ff(e, "add stream"))?;
        ost.set_parameters(&encoder);
        ost.set_time_base(time_base);
        if spec.rotation != 0 {
            // SAFETY: the stream is alive; FFmpeg 5.1 allocates 36 bytes of display matrix that
            // av_display_rotation_set fills. Sign checked against the ffmpeg CLI: with +angle,
            // `ffmpeg -i clip.mp4` (autorotate) shows the picture `render` draws.
            unsafe {
                let data = ffmpeg::ffi::av_stream_new_side_data(
                    ost.as_mut_ptr(),
                    ffmpeg::ffi::AVPacketSideDataType::AV_PKT_DATA_DISPLAYMATRIX,
                    36,
                );
                if data.is_null() {
                    return Err(Error::internal("cannot allocate a display matrix"));
                }
                ffmpeg::ffi::av_display_rotation_set(data as *mut i32, f64::from(spec.rotation));
            }
        }
    }
    // bitexact: no random track UIDs (Matroska) or version strings, so same spec → same bytes
    let mut muxer_opts = ffmpeg::Dictionary::new();
    muxer_opts.set("fflags", "+bitexact");
    octx.write_header_with(muxer_opts)
        .map_err(|e| ff(e, "write header"))?;
    let ost_tb = octx.stream(0).map(|s| s.time_base()).unwrap_or(time_base);
    let (sw, sh) = stored_size;
    let mut scaler =
        scaling::Context::get(Pixel::RGB24, sw, sh, pix, sw, sh, scaling::Flags::BICUBIC)
            .map_err(|e| ff(e, "scaler"))?;
    let write_packets = |encoder: &mut ffmpeg::encoder::Video,
                         octx: &mut ffmpeg::format::context::Output|
     -> Result<()> {
        let mut packet = ffmpeg::Packet::empty();
        while encoder.receive_packet(&mut packet).is_ok() {
            packet.set_stream(0);
            // without a duration the MP4 muxer's edit list ends at the last frame's start and
            // marks that frame discarded; every frame lasts one nominal interval
            if packet.duration() <= 0 {
                packet.set_duration(1000);
            }
            packet.rescale_ts(time_base, ost_tb);
            packet
                .write_interleaved(octx)
                .map_err(|e| ff(e, "write packet"))?;
        }
        Ok(())
    };
    for i in 0..spec.frames {
        let t = frame_time(spec, i);
        let shown = render(spec, t);
        let stored = apply_orientation(shown, inverse_orientation(orientation));
        let mut rgb = ffmpeg::frame::Video::new(Pixel::RGB24, sw, sh);
        let stride = rgb.stride(0);
        let row = sw as usize * 3;
        for y in 0..sh as usize {
            rgb.data_mut(0)[y * stride..y * stride + row]
                .copy_from_slice(&stored.pixels[y * row..(y + 1) * row]);
        }
        let mut yuv = ffmpeg::frame::Video::empty();
        scaler.run(&rgb, &mut yuv).map_err(|e| ff(e, "convert"))?;
        yuv.set_pts(Some((t * f64::from(time_base.denominator())).round() as i64));
        encoder.send_frame(&yuv).map_err(|e| ff(e, "encode"))?;
        write_packets(&mut encoder, &mut octx)?;
    }
    encoder.send_eof().map_err(|e| ff(e, "flush"))?;
    write_packets(&mut encoder, &mut octx)?;
    octx.write_trailer().map_err(|e| ff(e, "write trailer"))?;
    Ok(())
}

/// A clip spec with defaults for tests: 320×240, 25 fps, 50 frames, GOP 12, red square moving right.
pub fn test_clip(format: ClipFormat) -> ClipSpec {
    ClipSpec {
        frames: 50,
        fps: 25,
        width: 320,
        height: 240,
        format,
        gop: 12,
        rotation: 0,
        variable_frame_rate: false,
        colour: [230, 30, 30],
        rightwards: true,
    }
}
