//! The streaming loader on a synthetic dataset ingested by mplug: the same global order for world
//! sizes 1/2/4, every sample exactly once per epoch, exact resume (also with another world size),
//! identical batches for any thread count, a tampered shard refused, the transforms against Pillow
//! and the reference's RandAugment (shutdown: loader_shutdown.rs, alone in its own process).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::common::{mplug, ok, python};
use mplug::loader::index::{DatasetIndex, DatasetInput};
use mplug::loader::{HostBatch, Loader, LoaderConfig, LoaderState, recv_timeout};

struct Fixture {
    _dir: tempfile::TempDir,
    data: PathBuf,
}

/// 61 synthetic images (the Karpathy train split of them) ingested with small row groups (many
/// row groups, a short last one).
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let data = crate::common::synth_coco_dataset(dir.path(), 61, 3);
        Fixture { _dir: dir, data }
    })
}

fn index(data: &Path) -> Arc<DatasetIndex> {
    Arc::new(
        DatasetIndex::open(&[DatasetInput {
            path: data.to_path_buf(),
            weight: 1.0,
        }])
        .unwrap(),
    )
}

fn config(rank: u64, world_size: u64, batch: usize, threads: usize) -> LoaderConfig {
    LoaderConfig {
        seed: 11,
        batch_size: batch,
        image_size: 32,
        train: true,
        crop_scale: (0.5, 1.0),
        hflip: true,
        randaugment: false,
        grounding: Default::default(),
        max_tokens: 12,
        mlm_probability: 0.15,
        shuffle_window: 2,
        threads,
        prefetch: 2,
        rank,
        world_size,
        drop_last: false,
        epochs: 2,
    }
}

fn start(cfg: LoaderConfig, state: LoaderState) -> Loader {
    let idx = index(&fixture().data);
    Loader::start(idx, Arc::new(HashSet::new()), cfg, state).unwrap()
}

fn fresh() -> LoaderState {
    LoaderState {
        seed: 11,
        epoch: 0,
        position: 0,
    }
}

/// Every batch until the end (panics on an error or a 60 s stall).
fn drain(mut l: Loader) -> Vec<HostBatch> {
    let mut out = Vec::new();
    loop {
        match recv_timeout(&mut l, Duration::from_secs(60)) {
            Some(Ok(b)) => out.push(b),
            Some(Err(e)) => panic!("loader error: {e}"),
            None => return out,
        }
    }
}

/// (epoch, position) → (sample, pixels hash, ids, mlm labels) of every row.
type Rows = BTreeMap<(u64, u64), (u64, String, Vec<i64>, Vec<i64>)>;

fn rows(batches: &[HostBatch]) -> Rows {
    let mut out = BTreeMap::new();
    for b in batches {
        let px = b.images.len() / b.batch;
        for (r, k) in b.keys.iter().enumerate() {
            let ids = b.input_ids[r * b.seq_len..(r + 1) * b.seq_len].to_vec();
            let labels =
                b.mlm_labels.as_ref().unwrap()[r * b.seq_len..(r + 1) * b.seq_len].to_vec();
            let len = b.attention_mask[r * b.seq_len..(r + 1) * b.seq_len]
                .iter()
                .sum::<i64>() as usize;
            let hash = blake3::hash(&b.images[r * px..(r + 1) * px])
                .to_hex()
                .to_string();
            out.insert(
                (k.epoch, k.position),
                (k.sample, hash, ids[..len].to_vec(), labels[..len].to_vec()),
            );
        }
    }
    out
}

#[test]
fn world_sizes_1_2_4_give_the_same_global_sequence_and_each_sample_once_per_epoch() {
    let global_batch = 8;
    let mut per_world = Vec::new();
    for w in [1u64, 2, 4] {
        let mut all = Rows::new();
        for r in 0..w {
            all.extend(rows(&drain(start(
                config(r, w, global_batch / w as usize, 2),
                fresh(),
            ))));
        }
        per_world.push((w, all));
    }
    // The Karpathy train file holds the synthetic set's train split only.
    let n = index(&fixture().data).len();
    assert!(n > 30, "{n}");
    let one = &per_world[0].1;
    for e in 0..2 {
        let samples: Vec<u64> = one
            .iter()
            .filter(|((ep, _), _)| *ep == e)
            .map(|(_, v)| v.0)
            .collect();
        let distinct: HashSet<u64> = samples.iter().copied().collect();
        assert_eq!(samples.len() as u64, n, "world size 1 pads nothing");
        assert_eq!(distinct.iter().max().copied(), Some(n - 1));
        assert_eq!(
            distinct.len() as u64,
            n,
            "epoch {e}: every sample exactly once"
        );
    }
    for (w, all) in &per_world[1..] {
        // Same (epoch, position) → same sample, same pixels, same tokens and masks; world size 4
        // pads 61 to 64 by repeating the first positions' samples.
        for (key, v) in one {
            assert_eq!(all.get(key), Some(v), "world size {w}, {key:?}");
        }
        let padding = all.len() - one.len();
        assert_eq!(
            padding as u64,
            2 * ((n.div_ceil(*w) * w) - n),
            "world size {w}"
        );
    }
    // The two epochs are ordered differently.
    let e0: Vec<u64> = one
        .iter()
        .filter(|((e, _), _)| *e == 0)
        .map(|(_, v)| v.0)
        .collect();
    let e1: Vec<u64> = one
        .iter()
        .filter(|((e, _), _)| *e == 1)
        .map(|(_, v)| v.0)
        .collect();
    assert_ne!(e0, e1);
}

#[test]
fn resume_mid_epoch_equals_uninterrupted_also_with_another_world_size() {
    let full = rows(&drain(start(config(0, 1, 4, 2), fresh())));
    // Stop after 5 batches of 4 (global position 20), save the state, resume with 2 ranks of 2.
    let mut l = start(config(0, 1, 4, 2), fresh());
    let mut first = Vec::new();
    for _ in 0..5 {
        first.push(
            recv_timeout(&mut l, Duration::from_secs(60))
                .unwrap()
                .unwrap(),
        );
    }
    let state = l.state();
    assert_eq!(
        state,
        LoaderState {
            seed: 11,
            epoch: 0,
            position: 20
        }
    );
    drop(l);
    let saved = serde_json::to_string(&state).unwrap();
    let state: LoaderState = serde_json::from_str(&saved).unwrap();
    let mut resumed = rows(&first);
    for r in 0..2 {
        resumed.extend(rows(&drain(start(config(r, 2, 2, 1), state))));
    }
    // Ranks of 2 pad epoch ends to 62 positions; compare the positions a single rank produces.
    let resumed: Rows = resumed
        .into_iter()
        .filter(|(k, _)| full.contains_key(k))
        .collect();
    assert_eq!(resumed, full);
    // A world size that does not divide the position is refused.
    let idx = index(&fixture().data);
    let bad = Loader::start(idx, Arc::new(HashSet::new()), config(0, 3, 2, 1), state);
    assert!(bad.is_err());
}

#[test]
fn batches_are_identical_for_any_thread_count() {
    let a = rows(&drain(start(config(0, 1, 5, 1), fresh())));
    let b = rows(&drain(start(config(0, 1, 5, 3), fresh())));
    assert_eq!(a, b);
}

#[test]
fn a_tampered_shard_is_refused_with_an_error_not_a_hang() {
    let t = tempfile::tempdir().unwrap();
    let copy = t.path().join("coco");
    std::fs::create_dir_all(copy.join("shards")).unwrap();
    std::fs::copy(
        fixture().data.join("manifest.json"),
        copy.join("manifest.json"),
    )
    .unwrap();
    for e in std::fs::read_dir(fixture().data.join("shards")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, copy.join("shards").join(p.file_name().unwrap())).unwrap();
    }
    let shard = std::fs::read_dir(copy.join("shards"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&shard).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&shard, bytes).unwrap();
    let idx = index(&copy);
    let mut cfg = config(0, 1, 4, 2);
    cfg.epochs = 1;
    let mut l = Loader::start(idx, Arc::new(HashSet::new()), cfg, fresh()).unwrap();
    let mut err = None;
    while let Some(b) = recv_timeout(&mut l, Duration::from_secs(60)) {
        if let Err(e) = b {
            err = Some(e.to_string());
            break;
        }
    }
    let err = err.expect("the tampered shard was read without error");
    assert!(err.contains("does not match its manifest"), "{err}");
}

#[test]
fn transforms_match_pillow_within_one_grey_level() {
    let mut cfg = config(0, 1, 8, 2);
    cfg.epochs = 1;
    cfg.image_size = 48;
    let batches = drain(start(cfg.clone(), fresh()));
    cfg.train = false;
    let eval = drain(start(cfg, fresh()));
    let t = tempfile::tempdir().unwrap();
    // Dump rows: image id, crop, flip, our pixels; Python redoes them from the stored JPEG with
    // Pillow (decode, crop, resize BICUBIC, FLIP_LEFT_RIGHT) and compares.
    let mut lines = Vec::new();
    for (mode, bs) in [("train", &batches), ("eval", &eval)] {
        for b in bs.iter().take(2) {
            let px = b.images.len() / b.batch;
            for (r, k) in b.keys.iter().enumerate() {
                let file = t.path().join(format!("{mode}_{}.bin", k.position));
                std::fs::write(&file, &b.images[r * px..(r + 1) * px]).unwrap();
                lines.push(
                    serde_json::json!({"mode": mode, "image_id": k.image_id, "crop": k.crop,
                    "flip": k.flipped, "size": b.size, "file": file})
                    .to_string(),
                );
            }
        }
    }
    let list = t.path().join("rows.jsonl");
    std::fs::write(&list, lines.join("\n")).unwrap();
    let script = r#"
import sys, io, glob, json
import numpy as np, pyarrow.parquet as pq
from PIL import Image
t = pq.read_table(sorted(glob.glob(sys.argv[1] + "/shards/*.parquet")), columns=["image_id", "image"])
stored = dict(zip(t["image_id"].to_pylist(), t["image"].to_pylist()))
worst, n = 0, 0
for line in open(sys.argv[2]):
    r = json.loads(line)
    im = Image.open(io.BytesIO(stored[r["image_id"]])).convert("RGB")
    s = r["size"]
    if r["crop"]:
        i, j, h, w = r["crop"]
        im = im.crop((j, i, j + w, i + h))
    im = im.resize((s, s), Image.BICUBIC)
    if r["flip"]:
        im = im.transpose(Image.FLIP_LEFT_RIGHT)
    ours = np.fromfile(r["file"], dtype=np.uint8).reshape(s, s, 3)
    d = int(np.abs(ours.astype(int) - np.asarray(im).astype(int)).max())
    worst = max(worst, d)
    n += 1
print(n, worst)
"#;
    let out = std::process::Command::new(python())
        .arg("-c")
        .arg(script)
        .arg(&fixture().data)
        .arg(&list)
        .output()
        .unwrap();
    let text = ok(out);
    let parts: Vec<u64> = text
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(parts[0], 32, "rows compared");
    assert!(parts[1] <= 1, "max difference vs Pillow: {}", parts[1]);
}

#[test]
fn an_exclusion_list_removes_exactly_its_rows() {
    let idx = index(&fixture().data);
    // Three ids of the fixture, taken from a first pass over the data.
    let all = drain(start(config(0, 1, 8, 2), fresh()));
    let mut ids: Vec<String> = all[0].keys.iter().map(|k| k.image_id.clone()).collect();
    ids.sort();
    ids.dedup();
    let dropped: Vec<String> = ids.into_iter().take(3).collect();
    let name = idx.datasets[0].manifest.name.clone();
    let entries: Vec<serde_json::Value> = dropped
        .iter()
        .map(|id| serde_json::json!({"dataset": name, "split": "train", "id": id, "source_path": "x", "reason": "test"}))
        .collect();
    let t = tempfile::tempdir().unwrap();
    let file = t.path().join("exclusions.json");
    let list = serde_json::json!({"format": "mplug.exclusions", "version": 1, "max_distance": 3, "entries": entries});
    std::fs::write(&file, list.to_string()).unwrap();
    let excluded = idx.excluded_samples(&file).unwrap();
    assert_eq!(excluded.len(), 3);
    let mut cfg = config(0, 1, 8, 2);
    cfg.epochs = 1;
    let l = Loader::start(idx.clone(), Arc::new(excluded), cfg, fresh()).unwrap();
    let seen: Vec<String> = drain(l)
        .iter()
        .flat_map(|b| b.keys.iter().map(|k| k.image_id.clone()))
        .collect();
    assert_eq!(seen.len() as u64, idx.len() - 3);
    assert!(seen.iter().all(|id| !dropped.contains(id)));
}

#[test]
fn a_frozen_sample_list_restricts_the_loader_to_its_rows() {
    let t = tempfile::tempdir().unwrap();
    let list = t.path().join("list.json");
    let select = mplug()
        .args(["select", "--data"])
        .arg(&fixture().data)
        .args([
            "--sql",
            "SELECT image_id FROM coco WHERE width > 0 ORDER BY image_id LIMIT 9",
        ])
        .arg("--out")
        .arg(&list)
        .output()
        .unwrap();
    ok(select);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&list).unwrap()).unwrap();
    let mut want: Vec<String> = v["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["image_id"].as_str().unwrap().to_string())
        .collect();
    want.sort();
    assert_eq!(want.len(), 9);
    let idx = index(&fixture().data);
    let listed = idx.listed_samples(&list).unwrap();
    let excluded: HashSet<u64> = (0..idx.len()).filter(|s| !listed.contains(s)).collect();
    let mut cfg = config(0, 1, 4, 1);
    cfg.epochs = 1;
    let l = Loader::start(idx.clone(), Arc::new(excluded), cfg, fresh()).unwrap();
    let mut seen: Vec<String> = drain(l)
        .iter()
        .flat_map(|b| b.keys.iter().map(|k| k.image_id.clone()))
        .collect();
    seen.sort();
    assert_eq!(seen, want);
    // A list made from other data (another dataset hash) is refused.
    let mut tampered = v.clone();
    tampered["datasets"][0]["dataset_blake3"] = serde_json::json!("0".repeat(64));
    let bad = t.path().join("bad.json");
    std::fs::write(&bad, tampered.to_string()).unwrap();
    let err = idx.listed_samples(&bad).unwrap_err().to_string();
    assert!(
        err.contains("changed since the sample list was made"),
        "{err}"
    );
}

#[test]
fn batches_become_nchw_tensors_normalised_with_the_clip_constants() {
    let mut l = start(config(0, 1, 4, 1), fresh());
    let b = recv_timeout(&mut l, Duration::from_secs(60))
        .unwrap()
        .unwrap();
    let t = b.to_tensors(tch::Device::Cpu, true);
    let s = b.size as i64;
    assert_eq!(t.images.size(), vec![4, 3, s, s]);
    assert_eq!(t.images.kind(), tch::Kind::Float);
    assert_eq!(t.input_ids.size(), vec![4, b.seq_len as i64]);
    assert_eq!(t.input_ids.kind(), tch::Kind::Int64);
    assert_eq!(
        t.mlm_labels.as_ref().map(|m| m.size()),
        Some(vec![4, b.seq_len as i64])
    );
    // Hand check: row 2, channel c, pixel (y, x) of the HWC bytes.
    let mean = [0.48145466, 0.4578275, 0.40821073];
    let std = [0.26862954, 0.26130258, 0.27577711];
    let px = b.images.len() / b.batch;
    for (y, x, c) in [(0usize, 0usize, 0usize), (5, 17, 1), (31, 31, 2)] {
        let v = b.images[2 * px + (y * b.size as usize + x) * 3 + c] as f64;
        let want = (v / 255.0 - mean[c]) / std[c];
        let got = t.images.double_value(&[2, c as i64, y as i64, x as i64]);
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    }
    let raw = b.to_tensors(tch::Device::Cpu, false);
    assert_eq!(raw.images.kind(), tch::Kind::Uint8);
    assert_eq!(
        raw.images.int64_value(&[1, 0, 3, 4]),
        b.images[px + (3 * b.size as usize + 4) * 3] as i64
    );
    assert_eq!(t.input_ids.int64_value(&[0, 0]), 101, "[CLS] first");
}

#[test]
fn mixing_weights_take_a_seeded_subset_or_repeat_samples() {
    let n = index(&fixture().data).len();
    for (weight, expect) in [(0.5, (n as f64 * 0.5).round() as u64), (2.0, 2 * n)] {
        let idx = Arc::new(
            DatasetIndex::open(&[DatasetInput {
                path: fixture().data.clone(),
                weight,
            }])
            .unwrap(),
        );
        let mut cfg = config(0, 1, 8, 2);
        cfg.epochs = 2;
        let l = Loader::start(idx, Arc::new(HashSet::new()), cfg, fresh()).unwrap();
        let all = drain(l);
        for epoch in 0..2 {
            let samples: Vec<u64> = all
                .iter()
                .flat_map(|b| b.keys.iter())
                .filter(|k| k.epoch == epoch)
                .map(|k| k.sample)
                .collect();
            assert_eq!(
                samples.len() as u64,
                expect,
                "weight {weight}, epoch {epoch}"
            );
            let mut counts = std::collections::HashMap::new();
            for s in &samples {
                *counts.entry(*s).or_insert(0) += 1;
            }
            let max_repeat = if weight >= 1.0 { weight as usize } else { 1 };
            assert!(counts.values().all(|&c| c == max_repeat), "weight {weight}");
        }
    }
}

#[test]
fn randaugment_ops_match_the_reference_numpy_opencv_code() {
    use mplug::loader::randaugment::{AugOp, apply};
    use mplug::stages::RgbImage;
    let t = tempfile::tempdir().unwrap();
    // A photo-like test image: smooth gradients plus noise, min above 0 on some channels.
    let (w, h) = (37u32, 29u32);
    let mut pixels = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let n = ((x * 7919 + y * 104729) % 23) as u8;
            pixels.extend_from_slice(&[
                (20 + x * 5) as u8 + n,
                (y * 8) as u8,
                200 - (x + y) as u8 + n,
            ]);
        }
    }
    let img = RgbImage {
        width: w,
        height: h,
        pixels,
    };
    let input = t.path().join("in.bin");
    std::fs::write(&input, &img.pixels).unwrap();
    let level = 0.7;
    let ops = [
        ("Identity", AugOp::Identity, 0.0),
        ("AutoContrast", AugOp::AutoContrast, 0.0),
        ("Equalize", AugOp::Equalize, 0.0),
        (
            "Brightness",
            AugOp::Brightness(level * 1.8 + 0.1),
            level * 1.8 + 0.1,
        ),
        (
            "Sharpness",
            AugOp::Sharpness(level * 1.8 + 0.1),
            level * 1.8 + 0.1,
        ),
        ("ShearX", AugOp::ShearX(-level * 0.3), -level * 0.3),
        ("ShearY", AugOp::ShearY(level * 0.3), level * 0.3),
        ("TranslateX", AugOp::TranslateX(level * 10.0), level * 10.0),
        (
            "TranslateY",
            AugOp::TranslateY(-level * 10.0),
            -level * 10.0,
        ),
        ("Rotate", AugOp::Rotate(level * 30.0), level * 30.0),
        ("Rotate", AugOp::Rotate(-level * 30.0), -level * 30.0),
    ];
    for (name, op, arg) in ops {
        let ours = apply(&img, op);
        let out = t.path().join(format!("{name}.bin"));
        let run = std::process::Command::new(python())
            .arg(crate::common::repo().join("tests/py/randaugment_reference.py"))
            .args([name, &format!("{arg:.17}"), &w.to_string(), &h.to_string()])
            .arg(&input)
            .arg(&out)
            .output()
            .unwrap();
        ok(run);
        let reference = std::fs::read(&out).unwrap();
        let worst = ours
            .pixels
            .iter()
            .zip(&reference)
            .map(|(a, b)| (*a as i32 - *b as i32).abs())
            .max()
            .unwrap();
        assert!(worst <= 1, "{name}({arg}): max difference {worst}");
        if !matches!(op, AugOp::Identity) {
            assert_ne!(ours.pixels, img.pixels, "{name} changed nothing");
        }
    }
}

#[test]
fn randaugment_in_the_loader_is_recorded_and_thread_independent() {
    let mut cfg = config(0, 1, 8, 1);
    cfg.randaugment = true;
    cfg.epochs = 1;
    let a = drain(start(cfg.clone(), fresh()));
    cfg.threads = 3;
    let b = drain(start(cfg, fresh()));
    assert_eq!(rows(&a), rows(&b));
    let keys: Vec<_> = a.iter().flat_map(|b| b.keys.iter()).collect();
    let with_ops = keys.iter().filter(|k| !k.augment.is_empty()).count();
    // Two draws at p = 0.5 each: about three samples in four get at least one op.
    assert!(
        with_ops * 2 > keys.len() && with_ops < keys.len(),
        "{with_ops} of {}",
        keys.len()
    );
    let mut plain_cfg = config(0, 1, 8, 1);
    plain_cfg.epochs = 1;
    let plain = rows(&drain(start(plain_cfg, fresh())));
    assert_ne!(rows(&a), plain);
}
