//! `mplug finetune grounding` (CPU): the training transforms with their box equal Pillow replaying
//! the same random choices as TransVG's `vg_transforms.py` does; the loader serves every train
//! expression once an epoch with the (side-swapped when flipped) phrase tokenised as the
//! reference and the canvas zero outside the image; a short run scores acc@0.5 after its
//! checkpoints and resumes exactly; `aug_blur: true` is refused.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use super::finetune::{curve, finetune_task, init, resume};
use crate::common::{ingest_folder, ok, python, repo, synth_raw, vocab};
use mplug::loader::grounding_transform::{GroundingAugment, train_transform};
use mplug::loader::rng::{LoaderRng, Purpose};
use mplug::stages::RgbImage;

const CONFIG: &str = "configs/grounding_tiny.yaml";

/// A test image with structure in every channel (so resizes and enhancers show).
fn image(w: u32, h: u32, k: u32) -> RgbImage {
    let mut pixels = Vec::with_capacity((w * h * 3) as usize);
    let mut s = 0x9E37_79B9u32 ^ k;
    for y in 0..h {
        for x in 0..w {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let noise = s >> 27;
            pixels.push(((x * 255 / w.max(1)) + noise) as u8);
            pixels.push(((y * 255 / h.max(1)) / 2 + noise * 3) as u8);
            pixels.push((((x + y) * 97 + k * 31) % 256) as u8);
        }
    }
    RgbImage {
        width: w,
        height: h,
        pixels,
    }
}

#[test]
fn training_transforms_equal_pillow_replaying_the_same_choices() {
    let texts = [
        "a dog",
        "man on the left",
        "bright lamp",
        "small red circle",
        "square at the top right",
        "the thing",
    ];
    let sizes = [(90, 60), (48, 36), (37, 50), (64, 64), (120, 40)];
    let mut cases = Vec::new();
    let mut got = Vec::new();
    for k in 0..48u32 {
        let (w, h) = sizes[k as usize % sizes.len()];
        let img = image(w, h, k);
        let b = [
            (k % 7) as f64 * w as f64 / 10.0,
            (k % 5) as f64 * h as f64 / 9.0,
            w as f64 * (0.7 + (k % 3) as f64 * 0.1),
            h as f64 * (0.6 + (k % 4) as f64 * 0.1),
        ];
        let text = texts[k as usize % texts.len()];
        let size = if k % 2 == 0 { 32 } else { 48 };
        let mut rng = LoaderRng::new(5, Purpose::Sample, 0, k as u64);
        let s = train_transform(&img, b, text, size, GroundingAugment::default(), &mut rng);
        let hex: String = img.pixels.iter().map(|v| format!("{v:02x}")).collect();
        cases.push(serde_json::json!({
            "image": hex, "width": w, "height": h, "box": b, "text": text, "size": size,
            "trace": s.trace,
        }));
        got.push(s);
    }
    let traces: Vec<_> = got.iter().map(|s| s.trace.clone().unwrap()).collect();
    assert!(
        traces.iter().filter(|t| t.crop.is_some()).count() >= 5,
        "crops are tested"
    );
    assert!(traces.iter().any(|t| t.crop_branch && t.crop.is_none()) || traces.len() < 100);
    assert!(traces.iter().filter(|t| t.flipped).count() >= 10);
    assert!(traces.iter().filter(|t| !t.jitter.is_empty()).count() >= 20);
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("cases.json"), dir.path().join("out.json"));
    std::fs::write(&input, serde_json::to_vec(&cases).unwrap()).unwrap();
    ok(Command::new(python())
        .arg(repo().join("tests/py/grounding_transform_oracle.py"))
        .arg(&input)
        .arg(&output)
        .output()
        .unwrap());
    let want: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&output).unwrap()).unwrap();
    for (k, (s, w)) in got.iter().zip(&want).enumerate() {
        let canvas: String = s.canvas.pixels.iter().map(|v| format!("{v:02x}")).collect();
        assert_eq!(s.text, w["text"].as_str().unwrap(), "case {k}");
        let region: Vec<u32> = serde_json::from_value(w["region"].clone()).unwrap();
        assert_eq!(s.region.to_vec(), region, "case {k}: {:?}", s.trace);
        assert!(
            canvas == w["canvas"].as_str().unwrap(),
            "case {k}: pixels differ, {:?}",
            s.trace
        );
        let target: Vec<f64> = serde_json::from_value(w["target"].clone()).unwrap();
        for (a, b) in s.target.iter().zip(&target) {
            // the reference's boxes are float32
            assert!(
                (a - b).abs() < 1e-5,
                "case {k}: target {:?} vs {target:?}",
                s.target
            );
        }
    }
}

/// The synthetic RefCOCO, ingested.
fn synth_refcoco(dir: &Path) -> PathBuf {
    let raw = synth_raw(&dir.join("raw"), 40, 6);
    ingest_folder(
        "refcoco",
        &raw.join("refcoco"),
        &raw.join("refcoco/images"),
        &dir.join("refcoco"),
        &["--max-side", "48"],
    )
}

#[test]
fn grounding_loader_serves_every_train_expression_as_the_reference_tokenises_it() {
    use mplug::loader::index::{DatasetIndex, DatasetInput};
    use mplug::loader::sample::SampleKind;
    use mplug::loader::{Loader, LoaderConfig, LoaderState};
    let t = tempfile::tempdir().unwrap();
    let data = synth_refcoco(t.path());
    let tok = Arc::new(mplug::text::BertTokenizer::from_vocab_file(&vocab()).unwrap());
    let index = DatasetIndex::open_kind(
        &[DatasetInput {
            path: data.clone(),
            weight: 1.0,
        }],
        SampleKind::Grounding(tok),
    )
    .unwrap();
    let outside_train = index.samples_outside_split("train").unwrap();
    // pyarrow + transformers: every train expression, its phrase tokenised as
    // convert_examples_to_features does, as stored and with left/right swapped
    let script = r#"
import json, sys, glob, pyarrow.parquet as pq
from transformers import BertTokenizer
tok = BertTokenizer(sys.argv[2], do_lower_case=True)
def ids(t):
    return [101] + tok.convert_tokens_to_ids(tok.tokenize(t))[:18] + [102]
def swap(t):
    return t.replace("right", "*&^special^&*").replace("left", "right").replace("*&^special^&*", "left")
out = {}
for f in sorted(glob.glob(sys.argv[1] + "/shards/*.parquet")):
    for r in pq.read_table(f, columns=["image_id", "split", "sentences"]).to_pylist():
        if r["split"] == "train":
            for i, s in enumerate(r["sentences"]):
                out[f'{r["image_id"]}/{i}'] = [ids(s.lower()), ids(swap(s.lower()))]
print(json.dumps(out))
"#;
    let want: std::collections::HashMap<String, (Vec<i64>, Vec<i64>)> =
        serde_json::from_str(&ok(Command::new(python())
            .arg("-c")
            .arg(script)
            .arg(&data)
            .arg(vocab())
            .output()
            .unwrap()))
        .unwrap();
    let config = LoaderConfig {
        batch_size: 8,
        image_size: 32,
        max_tokens: 20,
        threads: 2,
        drop_last: false,
        epochs: 1,
        ..LoaderConfig::default()
    };
    let state = LoaderState {
        seed: 0,
        epoch: 0,
        position: 0,
    };
    let mut loader =
        Loader::start(Arc::new(index), Arc::new(outside_train), config, state).unwrap();
    let (mut seen, mut flipped, mut swapped_text) = (Vec::new(), 0, 0);
    while let Some(b) = loader.next_host() {
        let b = b.unwrap();
        let boxes = b.boxes.clone().expect("grounding batches carry boxes");
        for (r, (key, &(_, [left, top, w, h]))) in b.keys.iter().zip(&boxes).enumerate() {
            let name = format!("{}/{}", key.image_id, key.item.unwrap());
            let n = b.attention_mask[r * b.seq_len..(r + 1) * b.seq_len]
                .iter()
                .sum::<i64>() as usize;
            let row = b.input_ids[r * b.seq_len..r * b.seq_len + n].to_vec();
            let (plain, swapped) = &want[&name];
            let expect = if key.flipped { swapped } else { plain };
            assert_eq!(&row, expect, "{name} (flipped: {})", key.flipped);
            flipped += key.flipped as usize;
            swapped_text += (key.flipped && plain != swapped) as usize;
            assert!(left + w <= 32 && top + h <= 32 && w.max(h) >= 26);
            seen.push(name);
        }
        // normalised, the canvas is exactly zero outside each image
        let tensors = b.to_tensors(tch::Device::Cpu, true);
        for (r, (_, [left, top, w, h])) in boxes.iter().enumerate() {
            let img = tensors.images.get(r as i64);
            let inside = img
                .narrow(1, *top as i64, *h as i64)
                .narrow(2, *left as i64, *w as i64)
                .abs()
                .sum(tch::Kind::Float)
                .double_value(&[]);
            let total = img.abs().sum(tch::Kind::Float).double_value(&[]);
            assert!(
                inside > 0.0 && (total - inside).abs() < 1e-3 * total,
                "row {r}"
            );
        }
    }
    seen.sort();
    let mut all: Vec<String> = want.keys().cloned().collect();
    all.sort();
    assert_eq!(seen, all, "every train expression once");
    assert!(flipped > seen.len() / 4 && flipped < seen.len() * 3 / 4);
    assert!(swapped_text > 0, "some flipped phrases name a side");
}

fn finetune(data: &Path, init: &Path, out: &Path) -> Command {
    let mut c = finetune_task("grounding", CONFIG, init, data, out);
    c.arg("--eval-data")
        .arg(data)
        .args(["--eval-split", "val", "--eval-limit", "8"])
        .args([
            "--set",
            "train.max_steps=4",
            "--set",
            "train.checkpoint_every=2",
        ]);
    c
}

#[test]
fn grounding_finetuning_scores_its_checkpoints_and_resumes_exactly() {
    let t = tempfile::tempdir().unwrap();
    let data = synth_refcoco(t.path());
    let init = init(t.path());
    let straight = t.path().join("straight");
    ok(finetune(&data, &init, &straight).output().unwrap());
    let want = curve(&straight);
    assert_eq!(want.len(), 4);
    assert!(
        want.iter()
            .all(|l| l["loss_grounding"].as_f64().unwrap() > 0.0)
    );
    assert!(
        want.iter()
            .all(|l| (0.0..=1.0).contains(&l["acc_grounding"].as_f64().unwrap()))
    );
    let evals = std::fs::read_to_string(straight.join("eval.jsonl")).unwrap();
    let evals: Vec<serde_json::Value> = evals
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(evals.len(), 2);
    assert!(evals.iter().all(|e| e["accuracy"].is_f64()));
    assert!(straight.join("best.json").is_file());

    let stopped = t.path().join("stopped");
    ok(finetune(&data, &init, &stopped)
        .args(["--stop-at-step", "3"])
        .output()
        .unwrap());
    ok(resume(&stopped));
    assert_eq!(curve(&stopped), want);

    // GaussianBlur is not built: refused before any work
    let blurred = t.path().join("blurred");
    let out = finetune(&data, &init, &blurred)
        .args(["--set", "aug_blur=true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("aug_blur"));
    assert!(!blurred.exists());
}
