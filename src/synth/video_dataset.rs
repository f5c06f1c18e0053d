//! `mplug synth --video`: small MSRVTT, MSVD-QA and VATEX datasets in their original annotation
//! formats, over synthetic clips (a coloured square moving left or right) in h264/mp4, vp9/webm and
//! mjpeg/avi, including a rotated clip, a variable-frame-rate clip and a clip shorter than 8 frames.
//! Captions and answers state the colour and the direction, so the data is learnable.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::rng::SynthRng;
use super::video::{ClipFormat, ClipSpec, write_clip};
use crate::error::Result;

/// What to write.
#[derive(Debug, Clone)]
pub struct VideoSynthOptions {
    /// Output root (gets msrvtt/, msvd/, vatex/).
    pub out: PathBuf,
    /// Seed of every choice.
    pub seed: u64,
    /// Clips per dataset.
    pub clips: usize,
    /// Frames per clip (None: 30–60, plus the special short clip); for benchmarks.
    pub clip_frames: Option<usize>,
    /// Keyframe interval (None: 12).
    pub gop: Option<u32>,
}

/// What was written.
#[derive(Debug, Clone, Default)]
pub struct VideoSynthSummary {
    /// Clip files written.
    pub clips: usize,
    /// Their total size.
    pub bytes: u64,
}

const COLOURS: &[(&str, [u8; 3])] = &[
    ("red", [220, 40, 40]),
    ("green", [40, 200, 60]),
    ("blue", [50, 80, 230]),
    ("yellow", [230, 220, 40]),
];

struct Clip {
    spec: ClipSpec,
    colour: &'static str,
    direction: &'static str,
}

fn clip(rng: &mut SynthRng, i: usize, opts: &VideoSynthOptions) -> Clip {
    let (colour, rgb) = *rng.pick(COLOURS);
    let rightwards = rng.range(0, 2) == 1;
    let format = [
        ClipFormat::Mp4H264,
        ClipFormat::WebmVp9,
        ClipFormat::AviMjpeg,
    ][i % 3];
    let mut spec = ClipSpec {
        frames: 30 + rng.range(0, 31) as usize,
        fps: 25,
        width: 320,
        height: 240,
        format,
        gop: 12,
        rotation: 0,
        variable_frame_rate: false,
        colour: rgb,
        rightwards,
    };
    // the decoding cases real data holds, on fixed positions so every dataset has them
    match i {
        1 => {
            spec.format = ClipFormat::Mp4H264;
            spec.rotation = 90;
        }
        2 => {
            spec.format = ClipFormat::Mp4H264;
            spec.variable_frame_rate = true;
        }
        4 => spec.frames = 5,
        _ => {}
    }
    if let Some(f) = opts.clip_frames {
        spec.frames = f;
    }
    if let Some(g) = opts.gop {
        spec.gop = g;
    }
    Clip {
        spec,
        colour,
        direction: if rightwards { "right" } else { "left" },
    }
}

fn captions(c: &Clip, n: usize) -> Vec<String> {
    let all = [
        format!("a {} square moves to the {}", c.colour, c.direction),
        format!(
            "a {} box slides {} across a dark screen",
            c.colour, c.direction
        ),
        format!("the {} square travels from one side to the other", c.colour),
        format!("a small {} shape is moving {}", c.colour, c.direction),
        format!("animation of a {} square going {}", c.colour, c.direction),
        format!(
            "a {} block crosses the frame toward the {}",
            c.colour, c.direction
        ),
        format!(
            "something {} moves {} over a grey background",
            c.colour, c.direction
        ),
        format!(
            "a square that is {} glides to the {}",
            c.colour, c.direction
        ),
        format!("a {} tile drifts {}", c.colour, c.direction),
        format!("a moving {} square heading {}", c.colour, c.direction),
    ];
    all.into_iter().take(n).collect()
}

fn qa(c: &Clip) -> Vec<(String, String)> {
    vec![
        ("what color is the square?".into(), c.colour.into()),
        ("which way does the square move?".into(), c.direction.into()),
        ("what shape is moving?".into(), "square".into()),
    ]
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| crate::Error::internal_caused("JSON serialisation failed", e))?;
    fs_err::write(path, bytes)?;
    Ok(())
}

fn write_clips(
    dir: &Path,
    names: &[String],
    clips: &[Clip],
    summary: &mut VideoSynthSummary,
) -> Result<()> {
    fs_err::create_dir_all(dir)?;
    for (name, c) in names.iter().zip(clips) {
        let path = dir.join(format!("{name}.{}", c.spec.format.extension()));
        write_clip(&path, &c.spec)?;
        summary.clips += 1;
        summary.bytes += fs_err::metadata(&path)?.len();
    }
    Ok(())
}

fn split_of(i: usize, n: usize) -> &'static str {
    if i * 10 < n * 6 {
        "train"
    } else if i * 10 < n * 8 {
        "validate"
    } else {
        "test"
    }
}

/// Writes the three datasets under `opts.out`.
pub fn write_synth_videos(opts: &VideoSynthOptions) -> Result<VideoSynthSummary> {
    let mut summary = VideoSynthSummary::default();
    let n = opts.clips.max(5);

    // MSRVTT: videodatainfo (train/validate/test), JSFUSION csv (test), MSRVTT-QA
    let mut rng = SynthRng::new(opts.seed, 101);
    let clips: Vec<Clip> = (0..n).map(|i| clip(&mut rng, i, opts)).collect();
    let names: Vec<String> = (0..n).map(|i| format!("video{i}")).collect();
    let root = opts.out.join("msrvtt");
    write_clips(&root.join("videos"), &names, &clips, &mut summary)?;
    let ann = root.join("annotations");
    fs_err::create_dir_all(&ann)?;
    let videos: Vec<_> = (0..n)
        .map(|i| {
            json!({"category": i % 20, "url": format!("https://www.youtube.com/watch?v=synth{i:05}"),
                   "video_id": names[i], "start time": 0.0, "end time": clips[i].spec.frames as f64 / 25.0,
                   "split": split_of(i, n), "id": i})
        })
        .collect();
    let mut sentences = Vec::new();
    for (i, c) in clips.iter().enumerate() {
        for cap in captions(c, 5) {
            sentences
                .push(json!({"caption": cap, "video_id": names[i], "sen_id": sentences.len()}));
        }
    }
    write_json(
        &ann.join("train_val_videodatainfo.json"),
        &json!({"info": {"year": 2016, "version": "synthetic"}, "videos": videos, "sentences": sentences}),
    )?;
    let mut csv = String::from("key,vid_key,video_id,sentence\n");
    for (i, c) in clips
        .iter()
        .enumerate()
        .filter(|(i, _)| split_of(*i, n) == "test")
    {
        csv.push_str(&format!(
            "ret{i},msr{i},{},{}\n",
            names[i],
            captions(c, 1)[0]
        ));
    }
    fs_err::write(ann.join("MSRVTT_JSFUSION_test.csv"), csv)?;
    for split in ["train", "val", "test"] {
        let mut items = Vec::new();
        for (i, c) in clips.iter().enumerate() {
            let s = match split_of(i, n) {
                "validate" => "val",
                s => s,
            };
            if s != split {
                continue;
            }
            for (q, a) in qa(c) {
                items.push(json!({"answer": a, "id": items.len(), "question": q, "video_id": i}));
            }
        }
        write_json(&ann.join(format!("{split}_qa.json")), &json!(items))?;
    }

    // MSVD-QA: YouTube-style clip names, youtube_mapping.txt, QA files
    let mut rng = SynthRng::new(opts.seed, 202);
    let clips: Vec<Clip> = (0..n).map(|i| clip(&mut rng, i, opts)).collect();
    let names: Vec<String> = (0..n)
        .map(|i| format!("synth{i:03}yt_{}_{}", 10 + i, 15 + i))
        .collect();
    let root = opts.out.join("msvd");
    write_clips(&root.join("videos"), &names, &clips, &mut summary)?;
    let ann = root.join("annotations");
    fs_err::create_dir_all(&ann)?;
    let mapping: String = names
        .iter()
        .enumerate()
        .map(|(i, name)| format!("{name} vid{}\n", i + 1))
        .collect();
    fs_err::write(ann.join("youtube_mapping.txt"), mapping)?;
    for (split, range) in [("train", 0..n * 7 / 10), ("test", n * 7 / 10..n)] {
        let mut items = Vec::new();
        for i in range {
            for (q, a) in qa(&clips[i]) {
                items.push(
                    json!({"answer": a, "id": items.len(), "question": q, "video_id": i + 1}),
                );
            }
        }
        write_json(&ann.join(format!("{split}_qa.json")), &json!(items))?;
    }

    // VATEX: YouTube id + start/end, 10 English (and placeholder Chinese) captions
    let mut rng = SynthRng::new(opts.seed, 303);
    let clips: Vec<Clip> = (0..n).map(|i| clip(&mut rng, i, opts)).collect();
    let names: Vec<String> = (0..n)
        .map(|i| format!("Synth{i:06}_{:06}_{:06}", i * 10, i * 10 + 10))
        .collect();
    let root = opts.out.join("vatex");
    write_clips(&root.join("videos"), &names, &clips, &mut summary)?;
    let ann = root.join("annotations");
    fs_err::create_dir_all(&ann)?;
    for (file, range) in [
        ("vatex_training_v1.0.json", 0..n * 7 / 10),
        ("vatex_validation_v1.0.json", n * 7 / 10..n),
    ] {
        let items: Vec<_> = range
            .map(|i| json!({"videoID": names[i], "enCap": captions(&clips[i], 10), "chCap": vec!["一个方块在移动"; 10]}))
            .collect();
        write_json(&ann.join(file), &json!(items))?;
    }
    Ok(summary)
}
