//! `mplug synth`.

use std::path::PathBuf;

use clap::Args;

use crate::synth::{SynthOptions, write_synth_dataset};

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Output directory (gets images/ and annotations/).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Seed of every random choice: same seed, same bytes.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Number of images (each with five captions).
    #[arg(long, default_value_t = 200)]
    images: usize,
    /// Fixed image size WxH (e.g. 640x480 for COCO-like benchmarks) [default: random 160-800 per side]
    #[arg(long, value_name = "WxH", value_parser = parse_size)]
    size: Option<(u32, u32)>,
    /// Only baseline RGB JPEGs (benchmarks); by default the first images cover progressive, grayscale,
    /// CMYK and EXIF-rotated JPEG and RGB/RGBA PNG, and the rest mix them.
    #[arg(long)]
    plain_jpeg: bool,
    /// Write video datasets instead: OUT/{msrvtt,msvd,vatex}/ with clips in h264/mp4, vp9/webm and
    /// mjpeg/avi (one rotated, one variable-frame-rate, one 5-frame clip) and the original annotation
    /// files (videodatainfo, JSFUSION csv, MSRVTT-QA, MSVD-QA + youtube_mapping.txt, VATEX).
    #[cfg(feature = "video")]
    #[arg(long)]
    video: bool,
    /// Clips per video dataset (with --video).
    #[cfg(feature = "video")]
    #[arg(long, default_value_t = 12)]
    clips: usize,
    /// Frames per clip (with --video; benchmarks) [default: 30-60 and one 5-frame clip]
    #[cfg(feature = "video")]
    #[arg(long, value_name = "N")]
    clip_frames: Option<usize>,
    /// Keyframe interval of the clips (with --video) [default: 12]
    #[cfg(feature = "video")]
    #[arg(long, value_name = "N")]
    gop: Option<u32>,
}

fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("`{s}` is not WxH"))?;
    Ok((
        w.parse().map_err(|_| format!("bad width in `{s}`"))?,
        h.parse().map_err(|_| format!("bad height in `{s}`"))?,
    ))
}

pub fn run(args: SynthArgs) -> anyhow::Result<()> {
    #[cfg(feature = "video")]
    if args.video {
        let opts = crate::synth::video_dataset::VideoSynthOptions {
            out: args.out.clone(),
            seed: args.seed,
            clips: args.clips,
            clip_frames: args.clip_frames,
            gop: args.gop,
        };
        let s = crate::synth::video_dataset::write_synth_videos(&opts)?;
        println!(
            "wrote {} clips ({:.1} MiB) to {}/{{msrvtt,msvd,vatex}}/videos",
            s.clips,
            s.bytes as f64 / (1 << 20) as f64,
            args.out.display()
        );
        return Ok(());
    }
    let opts = SynthOptions {
        out: args.out.clone(),
        seed: args.seed,
        images: args.images,
        size: args.size,
        plain_jpeg: args.plain_jpeg,
    };
    let summary = write_synth_dataset(&opts)?;
    let bytes: u64 = summary.images.iter().map(|i| i.bytes).sum();
    let mut by_variant = std::collections::BTreeMap::new();
    for i in &summary.images {
        *by_variant.entry(i.variant.name()).or_insert(0) += 1;
    }
    println!(
        "wrote {} images ({:.1} MiB) to {}/images",
        summary.images.len(),
        bytes as f64 / (1 << 20) as f64,
        args.out.display()
    );
    println!(
        "  variants: {}",
        by_variant
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    for f in &summary.annotation_files {
        println!("  {}/{f}", args.out.display());
    }
    Ok(())
}
