//! `mplug finetune vqa` end to end on the tiny model and the synthetic VQA v2 (CPU): the loader
//! serves one sample per question of the train split with its weighted answers (checked against
//! pyarrow), a stop or a crash in a checkpoint write resumes to the uninterrupted run, and bad
//! configs, data and init checkpoints stop with exit 2 before any work.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{ingest_folder, mplug, ok, python, repo, synth_coco_dataset, synth_raw, vocab};

const CONFIG: &str = "configs/vqa_tiny.yaml";

/// The synthetic VQA v2, ingested (train and val splits).
pub fn synth_vqa(dir: &Path) -> PathBuf {
    let raw = synth_raw(&dir.join("raw"), 24, 4);
    ingest_folder(
        "vqa",
        &raw.join("vqa"),
        &raw.join("images"),
        &dir.join("vqa"),
        &["--row-group-size", "8KiB", "--max-side", "48"],
    )
}

/// Fresh tiny weights (the architecture of the tiny configs).
pub fn init(dir: &Path) -> PathBuf {
    let path = dir.join("init.safetensors");
    ok(mplug()
        .current_dir(repo())
        .args(["model", "init", "--config", CONFIG, "--out"])
        .arg(&path)
        .output()
        .unwrap());
    path
}

fn finetune(data: &Path, init: &Path, out: &Path, extra: &[&str]) -> Command {
    finetune_with(Path::new(CONFIG), data, init, out, extra)
}

fn finetune_with(config: &Path, data: &Path, init: &Path, out: &Path, extra: &[&str]) -> Command {
    let config = config.to_str().expect("a UTF-8 config path");
    let mut c = finetune_task("vqa", config, init, data, out);
    c.args([
        "--set",
        "train.max_steps=6",
        "--set",
        "train.checkpoint_every=2",
    ])
    .args(extra);
    c
}

/// `mplug finetune TASK` on CPU with a small batch, two loader threads and the test vocab.
pub fn finetune_task(task: &str, config: &str, init: &Path, data: &Path, out: &Path) -> Command {
    let mut c = mplug();
    c.current_dir(repo())
        .args([
            "finetune", task, "--quiet", "--device", "cpu", "--config", config,
        ])
        .arg("--init")
        .arg(init)
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(out)
        .arg("--vocab")
        .arg(vocab())
        .args(["--set", "batch_size_train=4", "--set", "train.threads=2"]);
    c
}

pub fn resume(run: &Path) -> std::process::Output {
    mplug()
        .args(["finetune", "--quiet", "--device", "cpu", "--resume"])
        .arg(run)
        .output()
        .unwrap()
}

/// Every metrics field that does not measure time, per line.
pub fn curve(run: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    text.lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            let m = v.as_object_mut().unwrap();
            for timing in ["samples_per_s", "loader_starved_pct", "loader_queue_depth"] {
                m.remove(timing);
            }
            v
        })
        .collect()
}

/// The loader's question samples: an epoch of the train split holds every train question once
/// (pyarrow counts them), each with its stored answers tokenised as `[CLS] answer [SEP]` by the
/// reference tokenizer (transformers' BertTokenizer) and its stored weights.
#[test]
fn vqa_samples_are_the_train_questions_with_their_answers() {
    use mplug::loader::index::{DatasetIndex, DatasetInput};
    use mplug::loader::sample::{SampleKind, SampleText};
    use mplug::loader::{Loader, LoaderConfig, LoaderState};
    use std::sync::Arc;
    let t = tempfile::tempdir().unwrap();
    let data = synth_vqa(t.path());
    let tok = Arc::new(mplug::text::BertTokenizer::from_vocab_file(&vocab()).unwrap());
    let index = Arc::new(
        DatasetIndex::open_kind(
            &[DatasetInput {
                path: data.clone(),
                weight: 1.0,
            }],
            SampleKind::Question(tok),
        )
        .unwrap(),
    );
    let excluded = index.samples_outside_split("train").unwrap();
    assert!(index.samples_outside_split("nope").is_err());
    let script = r#"
import json, sys, pyarrow.parquet as pq, glob
from transformers import BertTokenizer
tok = BertTokenizer(sys.argv[2], do_lower_case=True)
out = {}
for f in sorted(glob.glob(sys.argv[1] + "/shards/*.parquet")):
    for r in pq.read_table(f).to_pylist():
        if r["split"] != "train":
            continue
        for q, a, w in zip(r["question_ids"], r["answers"], r["answer_weights"]):
            # the reference tokenizer: [CLS] + tokens, the EOS being the appended literal [SEP]
            out[r["image_id"] + "/" + q] = [[[101] + tok.encode(x + "[SEP]", add_special_tokens=False) for x in a], w]
print(json.dumps(out))
"#;
    let want: serde_json::Value = serde_json::from_str(&ok(Command::new(python())
        .arg("-c")
        .arg(script)
        .arg(&data)
        .arg(vocab())
        .output()
        .unwrap()))
    .unwrap();
    let want = want.as_object().unwrap();
    let config = LoaderConfig {
        batch_size: 5,
        image_size: 32,
        train: true,
        crop_scale: (0.5, 1.0),
        max_tokens: 25,
        threads: 2,
        drop_last: false,
        epochs: 1,
        ..LoaderConfig::default()
    };
    let mut loader = Loader::start(
        index.clone(),
        Arc::new(excluded),
        config,
        LoaderState {
            seed: 0,
            epoch: 0,
            position: 0,
        },
    )
    .unwrap();
    let mut seen = std::collections::BTreeSet::new();
    while let Some(b) = loader.next_host() {
        let b = b.unwrap();
        let a = b.answers.as_ref().expect("question batches carry answers");
        assert_eq!(a.counts.len(), b.batch);
        let mut first = 0usize;
        for (row, key) in b.keys.iter().enumerate() {
            let n = a.counts[row] as usize;
            // the question id of sample `item` of this image row
            let qid = key.item.unwrap();
            let matching: Vec<&String> = want
                .keys()
                .filter(|k| k.starts_with(&format!("{}/", key.image_id)))
                .collect();
            assert!(!matching.is_empty(), "{key:?}");
            let answers: Vec<Vec<i64>> = (first..first + n)
                .map(|i| {
                    a.ids[i * a.len..(i + 1) * a.len]
                        .iter()
                        .copied()
                        .filter(|&t| t != 0)
                        .collect()
                })
                .collect();
            let weights = &a.weights[first..first + n];
            // the sample's answers are those of one of this image's questions: the item-th one
            let hit = matching.iter().find(|k| {
                let w = &want[k.as_str()];
                let ids: Vec<Vec<i64>> = serde_json::from_value(w[0].clone()).unwrap();
                let ws: Vec<f64> = serde_json::from_value(w[1].clone()).unwrap();
                ids == answers && ws.iter().zip(weights).all(|(x, y)| (x - y).abs() < 1e-12)
            });
            assert!(hit.is_some(), "{key:?}: {answers:?}");
            assert!(seen.insert((key.image_id.clone(), qid)), "{key:?} twice");
            first += n;
        }
        assert_eq!(first, a.weights.len());
        let _ = SampleText::Caption(Vec::new());
    }
    assert_eq!(seen.len(), want.len(), "every train question exactly once");
}

#[test]
fn vqa_resume_after_a_stop_or_a_crash_equals_the_uninterrupted_run() {
    let t = tempfile::tempdir().unwrap();
    let data = synth_vqa(t.path());
    let init = init(t.path());
    let straight = t.path().join("straight");
    // every run also scores its checkpoints on 8 val questions
    let eval_args = [
        "--eval-data",
        data.to_str().unwrap(),
        "--eval-split",
        "val",
        "--eval-limit",
        "8",
    ];
    ok(finetune(&data, &init, &straight, &eval_args)
        .output()
        .unwrap());
    let want = curve(&straight);
    let evals = |run: &Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(run.join("eval.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let want_evals = evals(&straight);
    let steps: Vec<u64> = want_evals
        .iter()
        .map(|e| e["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, [2, 4, 6], "one evaluation per checkpoint");
    let best: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(straight.join("best.json")).unwrap())
            .unwrap();
    let top = want_evals
        .iter()
        .map(|e| e["vqa_accuracy"].as_f64().unwrap())
        .fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(best["value"].as_f64().unwrap(), top);
    let first_top = want_evals
        .iter()
        .find(|e| e["vqa_accuracy"].as_f64().unwrap() == top)
        .unwrap();
    assert_eq!(
        best["step"], first_top["step"],
        "ties keep the earlier checkpoint"
    );
    assert!(
        straight
            .join(best["checkpoint"].as_str().unwrap())
            .join("model.safetensors")
            .is_file()
    );
    assert_eq!(want.len(), 6);
    let losses: Vec<f64> = want
        .iter()
        .map(|l| l["loss_vqa"].as_f64().unwrap())
        .collect();
    assert!(
        losses.iter().all(|l| l.is_finite() && *l > 0.0),
        "{losses:?}"
    );
    assert!(
        !straight
            .join("checkpoints/step-00000006/momentum.safetensors")
            .exists(),
        "VQA keeps no momentum model (its distillation is a no-op in the reference)"
    );

    let stopped = t.path().join("stopped");
    let mut args = eval_args.to_vec();
    args.extend(["--stop-at-step", "3"]);
    ok(finetune(&data, &init, &stopped, &args).output().unwrap());
    assert_eq!(curve(&stopped).len(), 3);
    ok(resume(&stopped));
    assert_eq!(curve(&stopped), want);
    let resumed_evals: Vec<serde_json::Value> = evals(&stopped)
        .into_iter()
        .filter(|e| e["step"].as_u64() != Some(3))
        .collect();
    assert_eq!(
        resumed_evals, want_evals,
        "the same scores after the resume"
    );

    let crashed = t.path().join("crashed");
    let out = finetune(&data, &init, &crashed, &[])
        .env("MPLUG_CRASH_DURING_CHECKPOINT", "4")
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "the injected crash must kill the run"
    );
    ok(resume(&crashed));
    assert_eq!(curve(&crashed), want);
    let a = std::fs::read(straight.join("checkpoints/step-00000006/model.safetensors")).unwrap();
    let b = std::fs::read(crashed.join("checkpoints/step-00000006/model.safetensors")).unwrap();
    assert!(a == b, "final weights differ after crash + resume");
    // the fine-tuned weights evaluate as they are
    let eval_out = t.path().join("eval");
    ok(mplug()
        .current_dir(repo())
        .args([
            "eval", "vqa", "--quiet", "--device", "cpu", "--config", CONFIG,
        ])
        .arg("--weights")
        .arg(straight.join("checkpoints/step-00000006/model.safetensors"))
        .arg("--data")
        .arg(&data)
        .args(["--split", "val", "--limit", "8", "--out"])
        .arg(&eval_out)
        .arg("--vocab")
        .arg(vocab())
        .output()
        .unwrap());
    assert!(eval_out.join("results.json").is_file());
}

#[test]
fn bad_finetune_inputs_fail_before_any_work() {
    let t = tempfile::tempdir().unwrap();
    let data = synth_vqa(t.path());
    let init = init(t.path());
    let coco = synth_coco_dataset(t.path(), 8, 1);
    // weights of another size: a tiny model with a wider vision tower
    let other = t.path().join("other.yaml");
    let text = std::fs::read_to_string(repo().join(CONFIG))
        .unwrap()
        .replace("vision_width: 64", "vision_width: 48");
    std::fs::write(&other, text).unwrap();
    std::fs::copy(
        repo().join("configs/config_bert_tiny.json"),
        t.path().join("config_bert_tiny.json"),
    )
    .unwrap();
    let other_init = t.path().join("other.safetensors");
    ok(mplug()
        .args(["model", "init", "--config"])
        .arg(&other)
        .arg("--out")
        .arg(&other_init)
        .output()
        .unwrap());
    // a config that declares another task
    let declared = t.path().join("declared.yaml");
    let text = std::fs::read_to_string(repo().join(CONFIG))
        .unwrap()
        .replace("task: vqa", "task: pretrain");
    std::fs::write(&declared, text).unwrap();
    let config = repo().join(CONFIG);
    let pretrain = repo().join("configs/pretrain_tiny.yaml");
    let cases: Vec<(&Path, &[&str], &Path, &Path, &str)> = vec![
        (
            &config,
            &["--set", "bogus_key=1"],
            &data,
            &init,
            "bogus_key",
        ),
        (
            &config,
            &["--set", "train.task=pretrain"],
            &data,
            &init,
            "`pretrain`",
        ),
        (
            &config,
            &["--set", "train.seed=abc"],
            &data,
            &init,
            "`train.seed`",
        ),
        (
            &config,
            &["--set", "dist.backend=mpi"],
            &data,
            &init,
            "`dist.backend`",
        ),
        (&declared, &[], &data, &init, "`pretrain` config"),
        (&pretrain, &[], &data, &init, "pre-training config"),
        (&config, &[], &coco, &init, "image_text.v1"),
        (&config, &[], &data, &other_init, "visual_encoder"),
        (
            &config,
            &["--set", "train.split=nope"],
            &data,
            &init,
            "split `nope`",
        ),
    ];
    for (i, (cfg, extra, d, w, needle)) in cases.iter().enumerate() {
        let out_dir = t.path().join(format!("run{i}"));
        let out = finetune_with(cfg, d, w, &out_dir, extra).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "case {i}: {err}");
        assert!(err.contains(needle), "case {i}: {err}");
        assert!(!out_dir.exists(), "case {i} left a run directory");
    }
}

/// `mplug finetune caption`: one sample per caption of the train split (the loader's epoch holds
/// as many as pyarrow counts), targets `[CLS] raw caption [SEP]` by the reference tokenizer; a short
/// run with the reference's 4-batch accumulation writes `loss_caption`, and its checkpoint evaluates.
#[test]
fn caption_finetuning_reads_every_caption_and_evaluates() {
    use mplug::loader::index::{DatasetIndex, DatasetInput};
    use mplug::loader::sample::SampleKind;
    use mplug::loader::{Loader, LoaderConfig, LoaderState};
    use std::sync::Arc;
    let t = tempfile::tempdir().unwrap();
    let data = synth_coco_dataset(t.path(), 12, 2);
    let tok = Arc::new(mplug::text::BertTokenizer::from_vocab_file(&vocab()).unwrap());
    let index = Arc::new(
        DatasetIndex::open_kind(
            &[DatasetInput {
                path: data.clone(),
                weight: 1.0,
            }],
            SampleKind::CaptionTarget(tok),
        )
        .unwrap(),
    );
    let script = r#"
import json, sys, pyarrow.parquet as pq, glob
from transformers import BertTokenizer
tok = BertTokenizer(sys.argv[2], do_lower_case=True)
out = []
for f in sorted(glob.glob(sys.argv[1] + "/shards/*.parquet")):
    for r in pq.read_table(f, columns=["captions"]).to_pylist():
        for c in r["captions"]:
            out.append(([101] + tok.encode(c.lower() + "[SEP]", add_special_tokens=False))[:25])
print(json.dumps(sorted(out)))
"#;
    let want: Vec<Vec<i64>> = serde_json::from_str(&ok(Command::new(python())
        .arg("-c")
        .arg(script)
        .arg(&data)
        .arg(vocab())
        .output()
        .unwrap()))
    .unwrap();
    let config = LoaderConfig {
        batch_size: 7,
        image_size: 32,
        max_tokens: 25,
        threads: 2,
        drop_last: false,
        epochs: 1,
        ..LoaderConfig::default()
    };
    let mut loader = Loader::start(
        index,
        Arc::new(Default::default()),
        config,
        LoaderState {
            seed: 0,
            epoch: 0,
            position: 0,
        },
    )
    .unwrap();
    let mut got = Vec::new();
    while let Some(b) = loader.next_host() {
        let b = b.unwrap();
        for r in 0..b.batch {
            let row = &b.input_ids[r * b.seq_len..(r + 1) * b.seq_len];
            let n = b.attention_mask[r * b.seq_len..(r + 1) * b.seq_len]
                .iter()
                .sum::<i64>() as usize;
            got.push(row[..n].to_vec());
        }
    }
    got.sort();
    assert_eq!(got, want, "every caption once, tokenised as the reference");
    assert!(
        got.iter().any(|c| c.last() == Some(&102)),
        "targets end in [SEP]"
    );

    let init = init(t.path());
    let run = t.path().join("cap_run");
    ok(mplug()
        .current_dir(repo())
        .args(["finetune", "caption", "--quiet", "--device", "cpu"])
        .args(["--config", "configs/caption_tiny.yaml", "--init"])
        .arg(&init)
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&run)
        .arg("--vocab")
        .arg(vocab())
        .args(["--set", "train.max_steps=2", "--set", "batch_size_train=4"])
        .args(["--set", "train.split=train"])
        .output()
        .unwrap());
    let lines = curve(&run);
    assert_eq!(lines.len(), 2);
    assert!(
        lines
            .iter()
            .all(|l| l["loss_caption"].as_f64().unwrap() > 0.0)
    );
    let eval_out = t.path().join("cap_eval");
    ok(mplug()
        .current_dir(repo())
        .args(["eval", "caption", "--quiet", "--device", "cpu"])
        .args(["--config", "configs/caption_tiny.yaml", "--weights"])
        .arg(run.join("checkpoints/step-00000002/model.safetensors"))
        .arg("--data")
        .arg(&data)
        .args(["--split", "train", "--limit", "3", "--out"])
        .arg(&eval_out)
        .arg("--vocab")
        .arg(vocab())
        .output()
        .unwrap());
    assert!(eval_out.join("results.json").is_file());
}

/// `mplug finetune nlvr2` and `snli-ve` on the synthetic statements: every train statement once
/// per epoch; NLVR2's swap augmentation exchanges `left` ↔ `right` exactly when it swaps the pair
/// (the text of each sample is the stored one or its side-swapped copy, about half swapped); short
/// runs write the task's loss and accuracy, and their checkpoints evaluate with `mplug eval`.
#[test]
fn statement_finetuning_swaps_pairs_and_evaluates() {
    use mplug::loader::index::{DatasetIndex, DatasetInput};
    use mplug::loader::sample::SampleKind;
    use mplug::loader::{Loader, LoaderConfig, LoaderState};
    use std::sync::Arc;
    let t = tempfile::tempdir().unwrap();
    let raw = t.path().join("raw");
    synth_raw(&raw, 40, 6);
    let ingest = |what: &str, dir: &str| {
        let d = raw.join(dir);
        ingest_folder(what, &d, &d.join("images"), &t.path().join(dir), &[])
    };
    let nlvr2 = ingest("nlvr2", "nlvr2");
    let snli = ingest("snli-ve", "snli_ve");
    let tok = Arc::new(mplug::text::BertTokenizer::from_vocab_file(&vocab()).unwrap());
    let (left, right) = (
        tok.token_to_id("left").unwrap() as i64,
        tok.token_to_id("right").unwrap() as i64,
    );
    let index = Arc::new(
        DatasetIndex::open_kind(
            &[DatasetInput {
                path: nlvr2.clone(),
                weight: 1.0,
            }],
            SampleKind::Statement {
                tokenizer: tok.clone(),
                images: 2,
            },
        )
        .unwrap(),
    );
    let excluded = index.samples_outside_split("train").unwrap();
    let stored = index.len() - excluded.len() as u64;
    let config = LoaderConfig {
        seed: 3,
        batch_size: 4,
        image_size: 32,
        max_tokens: 64,
        threads: 2,
        drop_last: false,
        epochs: 1,
        ..LoaderConfig::default()
    };
    let mut loader = Loader::start(
        index.clone(),
        Arc::new(excluded),
        config,
        LoaderState {
            seed: 3,
            epoch: 0,
            position: 0,
        },
    )
    .unwrap();
    let script = r#"
import json, sys, pyarrow.parquet as pq, glob
out = {}
for f in sorted(glob.glob(sys.argv[1] + "/shards/*.parquet")):
    for r in pq.read_table(f, columns=["sample_id", "statement_tokens"]).to_pylist():
        for i, t in enumerate(r["statement_tokens"]):
            out[f"{r['sample_id']}/{i}"] = [101] + t
print(json.dumps(out))
"#;
    let stored_tokens: std::collections::HashMap<String, Vec<i64>> =
        serde_json::from_str(&ok(Command::new(python())
            .arg("-c")
            .arg(script)
            .arg(&nlvr2)
            .output()
            .unwrap()))
        .unwrap();
    let (mut seen, mut with_side, mut swapped) = (0u64, 0, 0);
    while let Some(b) = loader.next_host() {
        let b = b.unwrap();
        assert_eq!(b.images_per_sample, 2);
        assert_eq!(b.images.len(), b.batch * 2 * 32 * 32 * 3);
        assert_eq!(b.labels.as_ref().unwrap().len(), b.batch);
        for (r, key) in b.keys.iter().enumerate() {
            let row = &b.input_ids[r * b.seq_len..(r + 1) * b.seq_len];
            let n = b.attention_mask[r * b.seq_len..(r + 1) * b.seq_len]
                .iter()
                .sum::<i64>() as usize;
            let stored = &stored_tokens[&format!("{}/{}", key.image_id, key.item.unwrap())];
            let exchanged: Vec<i64> = stored
                .iter()
                .map(|&t| match t {
                    t if t == left => right,
                    t if t == right => left,
                    t => t,
                })
                .collect();
            if row.contains(&left) || row.contains(&right) {
                with_side += 1;
                assert!(!key.flipped, "a statement naming a side is never flipped");
                if row[..n] == exchanged[..] {
                    swapped += 1;
                } else {
                    assert_eq!(&row[..n], &stored[..], "{key:?}");
                }
            } else {
                assert_eq!(&row[..n], &stored[..], "{key:?}");
            }
            seen += 1;
        }
    }
    assert_eq!(seen, stored, "every train statement once");
    assert!(
        with_side > 3,
        "the synthetic NLVR2 names sides: {with_side}"
    );
    assert!(
        swapped > 0 && swapped < with_side,
        "about half the pairs swap: {swapped} of {with_side}"
    );
    // swap_sides itself, by hand
    let kind = SampleKind::Statement {
        tokenizer: tok.clone(),
        images: 2,
    };
    let mut text = mplug::loader::sample::SampleText::Statement {
        ids: vec![101, left, 2003, right, left],
        label: 1,
    };
    kind.swap_sides(&mut text);
    assert_eq!(
        text,
        mplug::loader::sample::SampleText::Statement {
            ids: vec![101, right, 2003, left, right],
            label: 1
        }
    );

    let init = init(t.path());
    for (task, dir, data, loss) in [
        ("nlvr2", "nlvr2", &nlvr2, "loss_nlvr2"),
        ("snli-ve", "snli_ve", &snli, "loss_snli_ve"),
    ] {
        let run = t.path().join(format!("{dir}_run"));
        let config = format!("configs/{dir}_tiny.yaml");
        ok(mplug()
            .current_dir(repo())
            .args([
                "finetune", task, "--quiet", "--device", "cpu", "--config", &config,
            ])
            .arg("--init")
            .arg(&init)
            .arg("--data")
            .arg(data)
            .arg("--out")
            .arg(&run)
            .arg("--vocab")
            .arg(vocab())
            .args(["--set", "train.max_steps=2", "--set", "batch_size_train=4"])
            .output()
            .unwrap());
        let lines = curve(&run);
        assert_eq!(lines.len(), 2, "{task}");
        assert!(
            lines.iter().all(|l| l[loss].as_f64().unwrap() > 0.0),
            "{task}"
        );
        let eval_out = t.path().join(format!("{dir}_eval"));
        ok(mplug()
            .current_dir(repo())
            .args([
                "eval", task, "--quiet", "--device", "cpu", "--config", &config,
            ])
            .arg("--weights")
            .arg(run.join("checkpoints/step-00000002/model.safetensors"))
            .arg("--data")
            .arg(data)
            .args(["--split", "train", "--out"])
            .arg(&eval_out)
            .arg("--vocab")
            .arg(vocab())
            .output()
            .unwrap());
        assert!(eval_out.join("results.json").is_file(), "{task}");
    }
    // NLVR2 from the SNLI-VE run: its 3-way head is another task's, so NLVR2's pair head starts
    // from its initialisation (with a warning); everything else loads.
    let run = t.path().join("nlvr2_from_snli_ve");
    let snli_ve_checkpoint = t.path().join("snli_ve_run/checkpoints/step-00000002");
    let out = finetune_task(
        "nlvr2",
        "configs/nlvr2_tiny.yaml",
        &snli_ve_checkpoint,
        &nlvr2,
        &run,
    )
    .args(["--set", "train.max_steps=2"])
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("another task's head"), "{err}");
    assert_eq!(curve(&run).len(), 2);
}

/// `mplug finetune retrieval`: one sample per caption (every stored caption once, its tokens after
/// `[CLS]`), the captions of one image sharing the image index ITC/ITM take as positives and other
/// images not; a short run writes ITC and ITM losses only and scores r_mean after its checkpoint.
#[test]
fn retrieval_finetuning_samples_captions_and_scores_r_mean() {
    use mplug::loader::index::{DatasetIndex, DatasetInput};
    use mplug::loader::sample::SampleKind;
    use mplug::loader::{Loader, LoaderConfig, LoaderState};
    use std::collections::HashMap;
    use std::sync::Arc;
    let t = tempfile::tempdir().unwrap();
    let data = synth_coco_dataset(t.path(), 12, 5);
    let index = Arc::new(
        DatasetIndex::open_kind(
            &[DatasetInput {
                path: data.clone(),
                weight: 1.0,
            }],
            SampleKind::CaptionEach,
        )
        .unwrap(),
    );
    let script = r#"
import json, sys, pyarrow.parquet as pq, glob
out = []
for f in sorted(glob.glob(sys.argv[1] + "/shards/*.parquet")):
    for r in pq.read_table(f, columns=["image_id", "caption_tokens"]).to_pylist():
        out += [[r["image_id"], [101] + t[:29]] for t in r["caption_tokens"]]
print(json.dumps(sorted(out)))
"#;
    let want: Vec<(String, Vec<i64>)> = serde_json::from_str(&ok(Command::new(python())
        .arg("-c")
        .arg(script)
        .arg(&data)
        .output()
        .unwrap()))
    .unwrap();
    let config = LoaderConfig {
        batch_size: 5,
        image_size: 32,
        max_tokens: 30,
        threads: 2,
        drop_last: false,
        epochs: 1,
        ..LoaderConfig::default()
    };
    let mut loader = Loader::start(
        index,
        Arc::new(Default::default()),
        config,
        LoaderState {
            seed: 0,
            epoch: 0,
            position: 0,
        },
    )
    .unwrap();
    let mut got = Vec::new();
    let mut image_of: HashMap<i64, String> = HashMap::new();
    while let Some(b) = loader.next_host() {
        let b = b.unwrap();
        for (r, (key, idx)) in b.keys.iter().zip(b.sample_indices()).enumerate() {
            let n = b.attention_mask[r * b.seq_len..(r + 1) * b.seq_len]
                .iter()
                .sum::<i64>() as usize;
            got.push((
                key.image_id.clone(),
                b.input_ids[r * b.seq_len..r * b.seq_len + n].to_vec(),
            ));
            let owner = image_of.entry(idx).or_insert_with(|| key.image_id.clone());
            assert_eq!(owner, &key.image_id, "one index, one image");
        }
    }
    got.sort();
    assert_eq!(got, want, "every caption once");
    let images: std::collections::HashSet<&String> = image_of.values().collect();
    assert_eq!(image_of.len(), images.len(), "one index per image");
    assert!(got.len() > image_of.len(), "images hold several captions");

    let init = init(t.path());
    let run = t.path().join("ret_run");
    ok(mplug()
        .current_dir(repo())
        .args(["finetune", "retrieval", "--quiet", "--device", "cpu"])
        .args(["--config", "configs/retrieval_tiny.yaml", "--init"])
        .arg(&init)
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&run)
        .arg("--vocab")
        .arg(vocab())
        .args(["--set", "train.max_steps=2", "--set", "batch_size_train=4"])
        .arg("--eval-data")
        .arg(&data)
        .args(["--eval-split", "train", "--eval-limit", "6"])
        .output()
        .unwrap());
    let lines = curve(&run);
    assert_eq!(lines.len(), 2);
    for l in &lines {
        assert!(l["loss_itc"].as_f64().unwrap() > 0.0 && l["loss_itm"].as_f64().unwrap() > 0.0);
        assert!(l["loss_mlm"].is_null() && l["loss_prefix"].is_null(), "{l}");
    }
    let eval = std::fs::read_to_string(run.join("eval.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(eval.lines().last().unwrap()).unwrap();
    let r = last["r_mean"].as_f64().unwrap();
    assert!((0.0..=100.0).contains(&r), "{last}");
}
