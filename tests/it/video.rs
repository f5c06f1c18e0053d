//! Video reading against the synthetic clips' ground truth: the square is drawn at a known position
//! for each presentation time, so every decoded frame can be checked against its timestamp.

use std::path::Path;
use std::time::{Duration, Instant};

use mplug::stages::decode::RgbImage;
use mplug::synth::video::{
    ClipFormat, ClipSpec, SQUARE_PX, frame_time, square_at, test_clip, write_clip,
};
use mplug::video::reader::{VideoError, decode_frames, decode_frames_with_stats, probe};
use mplug::video::sampler::{FrameSampling, sample_indices};
use mplug::video::stage::{FrameResize, VideoOptions, VideoStage};

fn later() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

/// Centre of the pixels that are clearly the square's colour (red: r > 150, g < 100).
fn red_centroid(img: &RgbImage) -> Option<(f64, f64)> {
    let (mut sx, mut sy, mut n) = (0.0, 0.0, 0.0);
    for y in 0..img.height {
        for x in 0..img.width {
            let o = ((y * img.width + x) * 3) as usize;
            let p = &img.pixels[o..o + 3];
            if p[0] > 150 && p[1] < 100 && p[2] < 100 {
                sx += f64::from(x);
                sy += f64::from(y);
                n += 1.0;
            }
        }
    }
    (n > 20.0).then(|| (sx / n, sy / n))
}

fn assert_square_where_time_says(spec: &ClipSpec, img: &RgbImage, t: f64, what: &str) {
    let (cx, cy) = red_centroid(img).unwrap_or_else(|| panic!("{what}: no square found"));
    let (x0, y0) = square_at(spec, t);
    let half = f64::from(SQUARE_PX - 1) / 2.0;
    assert!(
        (cx - (x0 + half)).abs() < 1.5,
        "{what}: x {cx:.1} vs expected {:.1} at t={t}",
        x0 + half
    );
    assert!(
        (cy - (y0 + half)).abs() < 1.5,
        "{what}: y {cy:.1} vs expected {:.1}",
        y0 + half
    );
}

fn clip(dir: &Path, name: &str, spec: &ClipSpec) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.{}", spec.format.extension()));
    write_clip(&path, spec).unwrap();
    path
}

/// For each container/codec: the probe finds every frame and its time; the seeking decode returns
/// the same pixels as decoding every frame; each frame shows the square where its timestamp says.
#[test]
fn frames_are_where_their_timestamps_say_and_seeking_equals_full_decode() {
    let dir = tempfile::tempdir().unwrap();
    for format in [
        ClipFormat::Mp4H264,
        ClipFormat::WebmVp9,
        ClipFormat::AviMjpeg,
    ] {
        let spec = test_clip(format);
        let path = clip(dir.path(), "c", &spec);
        let info = probe(&path, later(), 60.0).unwrap();
        assert_eq!(info.num_frames, spec.frames, "{format:?}");
        assert!(
            (info.fps - 25.0).abs() < 1e-6,
            "{format:?} fps {}",
            info.fps
        );
        assert!(!info.variable_frame_rate, "{format:?}");
        for (i, t) in info.times_s.iter().enumerate() {
            assert!(
                (t - frame_time(&spec, i)).abs() < 1e-3,
                "{format:?} frame {i}: {t}"
            );
        }
        let wanted = sample_indices(FrameSampling::Uniform, 8, &info.times_s);
        assert_eq!(wanted, vec![0, 6, 12, 18, 24, 30, 36, 42]);
        let seeking = decode_frames(&path, &info, &wanted, true, later(), 60.0).unwrap();
        let all: Vec<usize> = (0..spec.frames).collect();
        let full = decode_frames(&path, &info, &all, false, later(), 60.0).unwrap();
        for (k, &i) in wanted.iter().enumerate() {
            assert!(
                seeking[k] == full[i],
                "{format:?}: frame {i} differs between seek and full decode"
            );
            assert_square_where_time_says(
                &spec,
                &seeking[k],
                info.times_s[i],
                &format!("{format:?} frame {i}"),
            );
        }
        // out-of-order and repeated requests give the same frames
        let odd = decode_frames(&path, &info, &[30, 5, 30, 49], true, later(), 60.0).unwrap();
        assert!(
            odd[0] == full[30] && odd[1] == full[5] && odd[2] == full[30] && odd[3] == full[49]
        );
    }
}

/// With few frames wanted from a long clip, the decoder seeks instead of decoding everything.
#[test]
fn sparse_sampling_seeks_instead_of_decoding_everything() {
    let dir = tempfile::tempdir().unwrap();
    for format in [
        ClipFormat::Mp4H264,
        ClipFormat::WebmVp9,
        ClipFormat::AviMjpeg,
    ] {
        let spec = ClipSpec {
            frames: 300,
            ..test_clip(format)
        };
        let path = clip(dir.path(), "long", &spec);
        let info = probe(&path, later(), 60.0).unwrap();
        let wanted = sample_indices(FrameSampling::Evenly, 4, &info.times_s);
        let (frames, stats) =
            decode_frames_with_stats(&path, &info, &wanted, true, later(), 60.0).unwrap();
        assert!(stats.seeks >= 3, "{format:?}: {stats:?}");
        assert!(
            stats.frames_decoded < 100,
            "{format:?}: decoded {} of 300 frames",
            stats.frames_decoded
        );
        let all: Vec<usize> = (0..300).collect();
        let (full, full_stats) =
            decode_frames_with_stats(&path, &info, &all, false, later(), 60.0).unwrap();
        assert_eq!(full_stats.frames_decoded, 300);
        for (k, &i) in wanted.iter().enumerate() {
            assert!(frames[k] == full[i], "{format:?} frame {i}");
        }
    }
}

#[test]
fn rotation_metadata_is_applied() {
    let dir = tempfile::tempdir().unwrap();
    for rotation in [90, 180, 270] {
        let spec = ClipSpec {
            rotation,
            ..test_clip(ClipFormat::Mp4H264)
        };
        let path = clip(dir.path(), &format!("r{rotation}"), &spec);
        let info = probe(&path, later(), 60.0).unwrap();
        assert_eq!(info.rotation, rotation);
        let stage = VideoStage {
            options: VideoOptions {
                num_frames: 4,
                size: 320,
                resize: FrameResize::Fit,
                codec: mplug::stages::PixelCodec::Raw,
                ..VideoOptions::default()
            },
        };
        let out = stage.process(&path).unwrap().unwrap();
        assert_eq!(
            (out.orig_width, out.orig_height),
            (320, 240),
            "displayed size, rotation {rotation}"
        );
        let frame = RgbImage {
            width: out.width,
            height: out.height,
            pixels: out.frames[1].clone(),
        };
        assert_square_where_time_says(
            &spec,
            &frame,
            out.frame_times[1],
            &format!("rotation {rotation}"),
        );
    }
}

#[test]
fn variable_frame_rate_times_are_exact() {
    let dir = tempfile::tempdir().unwrap();
    let spec = ClipSpec {
        variable_frame_rate: true,
        ..test_clip(ClipFormat::Mp4H264)
    };
    let path = clip(dir.path(), "vfr", &spec);
    let info = probe(&path, later(), 60.0).unwrap();
    assert!(info.variable_frame_rate);
    for (i, t) in info.times_s.iter().enumerate() {
        assert!(
            (t - frame_time(&spec, i)).abs() < 1e-3,
            "frame {i}: {t} vs {}",
            frame_time(&spec, i)
        );
    }
    let wanted = sample_indices(FrameSampling::Fps { fps: 5.0 }, 10, &info.times_s);
    let frames = decode_frames(&path, &info, &wanted, true, later(), 60.0).unwrap();
    for (k, &i) in wanted.iter().enumerate() {
        assert_square_where_time_says(
            &spec,
            &frames[k],
            info.times_s[i],
            &format!("vfr frame {i}"),
        );
    }
}

fn reject_of(path: &Path, options: VideoOptions) -> VideoError {
    VideoStage { options }.process(path).unwrap().unwrap_err()
}

#[test]
fn bad_clips_are_rejected_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let empty = d.join("empty.mp4");
    std::fs::write(&empty, b"").unwrap();
    assert_eq!(
        reject_of(&empty, VideoOptions::default()),
        VideoError::Empty
    );

    let junk = d.join("junk.mp4");
    std::fs::write(&junk, b"this is not a video file at all, just text").unwrap();
    assert!(matches!(
        reject_of(&junk, VideoOptions::default()),
        VideoError::Open(_)
    ));

    // a WAV file: a valid container without a video stream (44-byte header + 0.1 s of silence)
    let wav = d.join("audio.wav");
    let samples = 800u32;
    let mut b = Vec::new();
    b.extend(b"RIFF");
    b.extend((36 + samples * 2).to_le_bytes());
    b.extend(b"WAVEfmt ");
    b.extend(16u32.to_le_bytes());
    b.extend(1u16.to_le_bytes()); // PCM
    b.extend(1u16.to_le_bytes()); // mono
    b.extend(8000u32.to_le_bytes());
    b.extend(16000u32.to_le_bytes());
    b.extend(2u16.to_le_bytes());
    b.extend(16u16.to_le_bytes());
    b.extend(b"data");
    b.extend((samples * 2).to_le_bytes());
    b.extend(vec![0u8; (samples * 2) as usize]);
    std::fs::write(&wav, b).unwrap();
    match reject_of(&wav, VideoOptions::default()) {
        VideoError::NoVideoStream(kinds) => assert!(kinds.contains("audio"), "{kinds}"),
        other => panic!("{other:?}"),
    }

    // truncated: an MP4 cut in half loses its index (moov is written last) and cannot be opened; a
    // WebM cut in half keeps its first frames; neither may panic or hang
    for format in [ClipFormat::Mp4H264, ClipFormat::WebmVp9] {
        let path = clip(d, "whole", &test_clip(format));
        let bytes = std::fs::read(&path).unwrap();
        let cut = d.join(format!("cut.{}", format.extension()));
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let stage = VideoStage {
            options: VideoOptions::default(),
        };
        match stage.process(&cut).unwrap() {
            Ok(c) => assert!(
                c.num_frames_total < 50,
                "{format:?}: {}",
                c.num_frames_total
            ),
            Err(e) => assert!(
                matches!(
                    e,
                    VideoError::Open(_) | VideoError::Decode(_) | VideoError::NoFrames
                ),
                "{e:?}"
            ),
        }
    }

    // unsupported codec: an AVI whose fourcc (stream header and bitmap header) names no codec FFmpeg
    // knows, so the stream has no decoder
    let path = clip(d, "u", &test_clip(ClipFormat::AviMjpeg));
    let mut bytes = std::fs::read(&path).unwrap();
    let mut patched = 0;
    for i in 0..bytes.len().saturating_sub(4) {
        if &bytes[i..i + 4] == b"MJPG" {
            bytes[i..i + 4].copy_from_slice(b"QZQZ");
            patched += 1;
        }
    }
    assert!(patched >= 1, "fourcc not found");
    let unsupported = d.join("unsupported.avi");
    std::fs::write(&unsupported, bytes).unwrap();
    match reject_of(&unsupported, VideoOptions::default()) {
        VideoError::UnsupportedCodec(c) => assert!(c.contains("QZQZ"), "{c}"),
        other => panic!("{other:?}"),
    }

    // timeout
    let path = clip(d, "t", &test_clip(ClipFormat::AviMjpeg));
    let opts = VideoOptions {
        timeout_s: 1e-6,
        ..VideoOptions::default()
    };
    assert!(matches!(reject_of(&path, opts), VideoError::Timeout(_)));
    // min_frames
    let opts = VideoOptions {
        min_frames: 60,
        ..VideoOptions::default()
    };
    assert!(
        reject_of(&path, opts)
            .to_string()
            .contains("fewer than min_frames = 60")
    );
}

/// Shorter than N: the reference's uniform rule gives N copies of frame 0; a 1-frame clip gives N
/// copies of its only frame.
#[test]
fn short_clips_follow_the_documented_rule() {
    let dir = tempfile::tempdir().unwrap();
    for (frames, format) in [
        (1usize, ClipFormat::AviMjpeg),
        (1, ClipFormat::WebmVp9),
        (5, ClipFormat::Mp4H264),
    ] {
        let spec = ClipSpec {
            frames,
            ..test_clip(format)
        };
        let path = clip(dir.path(), &format!("s{frames}{format:?}"), &spec);
        let stage = VideoStage {
            options: VideoOptions {
                num_frames: 8,
                ..VideoOptions::default()
            },
        };
        let out = stage
            .process(&path)
            .unwrap()
            .unwrap_or_else(|e| panic!("{frames}-frame clip: {e}"));
        assert_eq!(out.num_frames_total, frames);
        assert_eq!(out.frame_indices, vec![0; 8]);
        assert_eq!(out.frames.len(), 8);
        assert!(out.frames.iter().all(|f| f == &out.frames[0]));
    }
}

#[test]
fn clips_and_stage_output_are_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    for format in [
        ClipFormat::Mp4H264,
        ClipFormat::WebmVp9,
        ClipFormat::AviMjpeg,
    ] {
        let spec = test_clip(format);
        let a = clip(dir.path(), "a", &spec);
        let b = clip(dir.path(), "b", &spec);
        let hash = |p: &Path| blake3::hash(&std::fs::read(p).unwrap());
        assert!(
            hash(&a) == hash(&b),
            "{format:?}: two encodes of the same spec differ"
        );
        let stage = VideoStage {
            options: VideoOptions::default(),
        };
        let (x, y) = (
            stage.process(&a).unwrap().unwrap(),
            stage.process(&b).unwrap().unwrap(),
        );
        assert_eq!(x.frames, y.frames);
        assert_eq!(x.pixel_blake3, y.pixel_blake3);
    }
}

mod datasets {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use crate::common::{mplug, ok, python};

    fn synth(dir: &Path) -> PathBuf {
        let raw = dir.join("raw");
        ok(mplug()
            .args(["synth", "--video", "--clips", "10", "--out"])
            .arg(&raw)
            .output()
            .unwrap());
        raw
    }

    fn ingest(kind: &str, args: &[&str], raw: &Path, out: &Path, extra: &[&str]) -> String {
        let mut cmd = mplug();
        cmd.args(["ingest", kind, "--quiet", "--out"]).arg(out);
        cmd.args(extra);
        cmd.arg("--annotations");
        for a in args {
            cmd.arg(raw.join(a));
        }
        ok(cmd.output().unwrap())
    }

    fn check(out: &Path, frames: &str, size: &str, kind: &str, raw: &Path, anns: &[&str]) {
        let mut cmd = Command::new(python());
        cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/check_video.py"));
        cmd.arg(out).args([
            "--frames",
            frames,
            "--size",
            size,
            "--kind",
            kind,
            "--annotations",
        ]);
        for a in anns {
            cmd.arg(raw.join(a));
        }
        ok(cmd.output().unwrap());
    }

    /// Every dataset and format, checked by pyarrow + Pillow + numpy's arange (tests/py/check_video.py).
    #[test]
    fn video_datasets_match_independent_readers() {
        let dir = tempfile::tempdir().unwrap();
        let raw = synth(dir.path());
        let d = dir.path();
        let info = "msrvtt/annotations/train_val_videodatainfo.json";
        let csv = "msrvtt/annotations/MSRVTT_JSFUSION_test.csv";
        let videos = raw.join("msrvtt/videos");
        let v = videos.to_str().unwrap();
        let summary = ingest(
            "msrvtt",
            &[info, csv],
            &raw,
            &d.join("msrvtt"),
            &["--videos", v],
        );
        assert!(summary.contains("0 rejected"), "{summary}");
        check(&d.join("msrvtt"), "12", "224", "msrvtt", &raw, &[info]);
        let qa = [
            "msrvtt/annotations/train_qa.json",
            "msrvtt/annotations/val_qa.json",
            "msrvtt/annotations/test_qa.json",
        ];
        ingest(
            "msrvtt",
            &qa,
            &raw,
            &d.join("msrvtt_qa"),
            &["--videos", v, "--pipeline", "msrvtt-qa"],
        );
        check(&d.join("msrvtt_qa"), "16", "480", "msrvtt-qa", &raw, &qa);
        let msvd = [
            "msvd/annotations/train_qa.json",
            "msvd/annotations/test_qa.json",
        ];
        let mv = raw.join("msvd/videos");
        let map = raw.join("msvd/annotations/youtube_mapping.txt");
        ingest(
            "msvd-qa",
            &msvd,
            &raw,
            &d.join("msvd"),
            &[
                "--videos",
                mv.to_str().unwrap(),
                "--mapping",
                map.to_str().unwrap(),
            ],
        );
        check(&d.join("msvd"), "16", "480", "msvd", &raw, &msvd);
        let vatex = [
            "vatex/annotations/vatex_training_v1.0.json",
            "vatex/annotations/vatex_validation_v1.0.json",
        ];
        let vv = raw.join("vatex/videos");
        ingest(
            "vatex",
            &vatex,
            &raw,
            &d.join("vatex"),
            &["--videos", vv.to_str().unwrap()],
        );
        check(&d.join("vatex"), "8", "448", "vatex", &raw, &vatex);
        ok(mplug().arg("verify").arg(d.join("vatex")).output().unwrap());
    }

    #[test]
    fn thread_count_does_not_change_the_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let raw = synth(dir.path());
        let vatex = [
            "vatex/annotations/vatex_training_v1.0.json",
            "vatex/annotations/vatex_validation_v1.0.json",
        ];
        let vv = raw.join("vatex/videos");
        let mut hashes = Vec::new();
        for t in ["1", "2"] {
            let out = dir.path().join(format!("v{t}"));
            ingest(
                "vatex",
                &vatex,
                &raw,
                &out,
                &[
                    "--videos",
                    vv.to_str().unwrap(),
                    "--threads",
                    t,
                    "--row-group-size",
                    "200000",
                ],
            );
            let shard = std::fs::read(out.join("shards/part-00000.parquet")).unwrap();
            let manifest: serde_json::Value =
                serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
            hashes.push((blake3::hash(&shard), manifest["dataset_blake3"].clone()));
        }
        assert!(hashes[0] == hashes[1], "threads 1 and 2 differ");
    }

    /// Missing, empty, corrupt, non-video and audio-only "clips" become rejects with reasons; the good
    /// clips are written; the run exits 0.
    #[test]
    fn bad_clips_become_rejects_in_the_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let raw = synth(dir.path());
        let videos = raw.join("msrvtt/videos");
        let find = |stem: &str| {
            std::fs::read_dir(&videos)
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| p.file_stem().and_then(|s| s.to_str()) == Some(stem))
                .unwrap()
        };
        std::fs::remove_file(find("video0")).unwrap(); // missing
        std::fs::write(find("video3"), b"").unwrap(); // zero-length
        let v5 = find("video5");
        let bytes = std::fs::read(&v5).unwrap();
        std::fs::write(&v5, &bytes[..64]).unwrap(); // truncated to its first bytes
        std::fs::write(find("video6"), b"<html>404 not found</html>").unwrap(); // not a video
        let info = "msrvtt/annotations/train_val_videodatainfo.json";
        let out = dir.path().join("msrvtt");
        let summary = ingest(
            "msrvtt",
            &[info],
            &raw,
            &out,
            &["--videos", videos.to_str().unwrap()],
        );
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
        let rejects = manifest["rejects"].as_array().unwrap();
        let reason = |id: &str| -> String {
            rejects
                .iter()
                .find(|r| r["sample_id"] == id)
                .map(|r| format!("{} {} {}", r["stage"], r["unit"], r["reason"]))
                .unwrap_or_else(|| panic!("no reject for {id}: {summary}"))
        };
        assert!(
            reason("video0").contains("missing video file"),
            "{}",
            reason("video0")
        );
        assert!(
            reason("video3").contains("empty file"),
            "{}",
            reason("video3")
        );
        assert!(
            reason("video5").contains("\"decode\" \"clip\""),
            "{}",
            reason("video5")
        );
        assert!(
            reason("video6").contains("not a readable media file"),
            "{}",
            reason("video6")
        );
        assert_eq!(manifest["totals"]["images_written"], 6, "{summary}");
        assert_eq!(manifest["totals"]["images_rejected"], 4, "{summary}");
    }

    #[test]
    fn msvd_without_mapping_is_a_clear_error() {
        let out = mplug()
            .args([
                "ingest",
                "msvd-qa",
                "--annotations",
                "x.json",
                "--videos",
                ".",
                "--out",
                "/tmp/never",
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--mapping youtube_mapping.txt"), "{err}");
    }
}
