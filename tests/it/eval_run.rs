//! `mplug eval vqa|caption` (issue 17) against an independent PyTorch path (tests/py/eval_reference.py:
//! pyarrow rows, PIL decode + bicubic resize, mplug_reference.py's model and beam search, transformers'
//! BertTokenizer.decode), the official tools loading what it writes (the VQA API and vqaEval,
//! pycocotools `loadRes`), and its refusals.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{ingest_folder, mplug, ok, python, repo, synth_coco_dataset, synth_raw, vocab};

/// The tiny architecture of configs/vqa_tiny.yaml and caption_tiny.yaml, for mplug_reference.py.
const TINY: &[&str] = &[
    "--bert",
    "configs/config_bert_tiny.json",
    "--vision-width",
    "64",
    "--vision-layers",
    "2",
    "--vision-heads",
    "2",
    "--patch",
    "4",
    "--image-res",
    "32",
    "--embed-dim",
    "16",
];

fn read(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// A random checkpoint in the released format (`torch.save({'model': …})`, original keys, a
/// 10-row positional table the load resizes to 65).
fn random_checkpoint(dir: &Path) -> PathBuf {
    let ck = dir.join("task.pth");
    let mut args = vec!["tests/py/mplug_reference.py", "make-checkpoint"];
    args.extend_from_slice(TINY);
    let ck_s = ck.to_str().unwrap();
    args.extend(["--out", ck_s, "--pos-rows", "10", "--seed", "5"]);
    ok(Command::new(python())
        .current_dir(repo())
        .args(&args)
        .output()
        .unwrap());
    ck
}

/// `mplug synth` (40 images) → `mplug ingest vqa` with small row groups; returns the dataset and
/// the raw VQA v2 folder.
fn synth_vqa(dir: &Path) -> (PathBuf, PathBuf) {
    let raw = synth_raw(&dir.join("raw_vqa"), 40, 3);
    let data = ingest_folder(
        "vqa",
        &raw.join("vqa"),
        &raw.join("images"),
        &dir.join("vqa"),
        &["--row-group-size", "20KiB", "--max-side", "64"],
    );
    (data, raw.join("vqa"))
}

fn eval(
    task: &str,
    weights: &Path,
    data: &Path,
    split: &str,
    out: &Path,
    extra: &[&str],
) -> String {
    ok(mplug()
        .current_dir(repo())
        .args(["eval", task, "--quiet", "--device", "cpu", "--config"])
        .arg(format!("configs/{task}_tiny.yaml"))
        .arg("--weights")
        .arg(weights)
        .arg("--data")
        .arg(data)
        .args(["--split", split, "--out"])
        .arg(out)
        .arg("--vocab")
        .arg(vocab())
        .arg("--save-tokens")
        .args(extra)
        .output()
        .unwrap())
}

fn reference(
    task: &str,
    ck: &Path,
    data: &Path,
    split: &str,
    decoding: [&str; 5],
) -> serde_json::Value {
    let [batch, beam, min, max, limit] = decoding;
    run_reference(
        task,
        ck,
        data,
        &[
            "--split",
            split,
            "--batch-size",
            batch,
            "--beam-size",
            beam,
            "--min-length",
            min,
            "--max-length",
            max,
            "--limit",
            limit,
        ],
    )
}

/// Runs tests/py/eval_reference.py `task` on the tiny architecture with checkpoint `ck` over
/// dataset `data` (plus `args`) and returns the JSON it prints last.
fn run_reference(task: &str, ck: &Path, data: &Path, args: &[&str]) -> serde_json::Value {
    let out = ok(Command::new(python())
        .current_dir(repo())
        .args(["tests/py/eval_reference.py", task])
        .args(TINY)
        .arg("--ckpt")
        .arg(ck)
        .arg("--data")
        .arg(data)
        .arg("--vocab")
        .arg(vocab())
        .args(args)
        .output()
        .unwrap());
    serde_json::from_str(out.lines().last().unwrap()).unwrap()
}

/// Compares our results.json + tokens.json with the reference's list, item by item.
fn same_as_reference(out: &Path, want: &serde_json::Value, id_key: &str, text_key: &str) {
    let results = read(&out.join("results.json"));
    let tokens = read(&out.join("tokens.json"));
    let (results, tokens, want) = (
        results.as_array().unwrap(),
        tokens.as_array().unwrap(),
        want.as_array().unwrap(),
    );
    assert_eq!(results.len(), want.len());
    assert!(!want.is_empty());
    for ((r, t), w) in results.iter().zip(tokens).zip(want) {
        let id = match &r[id_key] {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        assert_eq!(id, w["id"].as_str().unwrap(), "order");
        assert_eq!(t["tokens"], w["tokens"], "token ids of {id}");
        assert_eq!(r[text_key], w["text"], "decoded text of {id}");
    }
}

/// On random weights (a released-format `.pth`), the answers and captions of `mplug eval` — token
/// ids and decoded text — equal the PyTorch reference path's, over several row groups, batches that
/// do not divide the split, `--limit`, and the task YAMLs' decoding (beam 5; min/max 1/10 and 8/25).
#[test]
fn eval_vqa_and_caption_equal_the_pytorch_reference() {
    let t = tempfile::tempdir().unwrap();
    let ck = random_checkpoint(t.path());
    let (vqa, _) = synth_vqa(t.path());
    let out = t.path().join("vqa_out");
    let summary = eval("vqa", &ck, &vqa, "val", &out, &["--batch-size", "7"]);
    assert!(
        summary.contains("questions of `vqa` split `val`"),
        "{summary}"
    );
    let want = reference("vqa", &ck, &vqa, "val", ["7", "5", "1", "10", "1000"]);
    same_as_reference(&out, &want, "question_id", "answer");

    let coco = synth_coco_dataset(t.path(), 30, 4);
    let out = t.path().join("caption_out");
    eval(
        "caption",
        &ck,
        &coco,
        "train",
        &out,
        &["--batch-size", "5", "--limit", "12"],
    );
    let want = reference("caption", &ck, &coco, "train", ["5", "5", "8", "25", "12"]);
    same_as_reference(&out, &want, "image_id", "caption");
}

/// What `mplug eval` writes loads in the official tools: the VQA API takes results.json with the
/// original synth question file and with ours, vqaEval (official) on the original annotations gives
/// metrics.json's accuracy, and our annotations.json holds the original ten answers of every question
/// (a majority-answer results file scores the same against either); pycocotools `loadRes` takes the
/// caption results against references.json, and COCOEvalCap's BLEU/ROUGE-L/CIDEr equal metrics.json.
#[test]
fn eval_outputs_load_in_the_official_tools() {
    let t = tempfile::tempdir().unwrap();
    let ck = random_checkpoint(t.path());
    let (vqa, raw) = synth_vqa(t.path());
    let vqa_out = t.path().join("vqa_out");
    eval("vqa", &ck, &vqa, "val", &vqa_out, &[]);
    let coco = synth_coco_dataset(t.path(), 12, 6);
    let cap_out = t.path().join("caption_out");
    eval("caption", &ck, &coco, "train", &cap_out, &[]);
    let script = r#"
import contextlib, io, json, sys
sys.path.insert(0, sys.argv[1])
import vqa_oracle
raw, vqa_out, cap_out = sys.argv[2:5]
quiet = contextlib.redirect_stdout(io.StringIO())
vqa_mod, eval_mod = vqa_oracle.load("vqa"), vqa_oracle.load("vqa_eval")
out = {}
ann_raw = f"{raw}/v2_mscoco_val2014_annotations.json"
q_raw = f"{raw}/v2_OpenEnded_mscoco_val2014_questions.json"
with quiet:
    gt = vqa_mod.VQA(ann_raw, q_raw)
    res = gt.loadRes(f"{vqa_out}/results.json", q_raw)
    e = eval_mod.VQAEval(gt, res, n=2)
    vqa_oracle.official_evaluate(e)
    ours = vqa_mod.VQA(f"{vqa_out}/annotations.json", f"{vqa_out}/questions.json")
    ours.loadRes(f"{vqa_out}/results.json", f"{vqa_out}/questions.json")
out["official_overall"] = e.accuracy["overall"]
raw_anns = {a["question_id"]: sorted(x["answer"] for x in a["answers"]) for a in json.load(open(ann_raw))["annotations"]}
our_anns = {a["question_id"]: sorted(x["answer"] for x in a["answers"]) for a in json.load(open(f"{vqa_out}/annotations.json"))["annotations"]}
out["answers_equal"] = raw_anns == our_anns
out["questions"] = len(our_anns)
majority = [{"question_id": a["question_id"], "answer": a["multiple_choice_answer"]} for a in json.load(open(ann_raw))["annotations"]]
json.dump(majority, open(f"{vqa_out}/majority.json", "w"))
from pycocotools.coco import COCO
from pycocoevalcap.eval import COCOEvalCap
with quiet, contextlib.redirect_stderr(io.StringIO()):
    coco = COCO(f"{cap_out}/references.json")
    cres = coco.loadRes(f"{cap_out}/results.json")
    ev = COCOEvalCap(coco, cres)
    ev.params["image_id"] = cres.getImgIds()
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.cider.cider import Cider
    ids = cres.getImgIds()
    gts = {i: coco.imgToAnns[i] for i in ids}
    rs = {i: cres.imgToAnns[i] for i in ids}
    tok = PTBTokenizer()
    gts, rs = tok.tokenize(gts), tok.tokenize(rs)
    scores = {}
    b, _ = Bleu(4).compute_score(gts, rs)
    for k, v in enumerate(b):
        scores[f"Bleu_{k+1}"] = v
    scores["ROUGE_L"], _ = Rouge().compute_score(gts, rs)
    scores["CIDEr"], _ = Cider().compute_score(gts, rs)
out["caption"] = scores
out["caption_images"] = len(ids)
# a results file that overlaps the references (each image's last reference caption)
refs = json.load(open(f"{cap_out}/references.json"))["annotations"]
last = {a["image_id"]: a["caption"] for a in refs}
json.dump([{"image_id": i, "caption": c} for i, c in last.items()], open(f"{cap_out}/last_ref.json", "w"))
with quiet, contextlib.redirect_stderr(io.StringIO()):
    lres = coco.loadRes(f"{cap_out}/last_ref.json")
    lrs = tok.tokenize({i: lres.imgToAnns[i] for i in ids})
    out["last_ref_cider"], _ = Cider().compute_score(gts, lrs)
print(json.dumps(out))
"#;
    let py = ok(Command::new(python())
        .arg("-c")
        .arg(script)
        .arg(repo().join("tests/py"))
        .arg(&raw)
        .arg(&vqa_out)
        .arg(&cap_out)
        .output()
        .unwrap());
    let got: serde_json::Value = serde_json::from_str(py.lines().last().unwrap()).unwrap();
    let metrics = read(&vqa_out.join("metrics.json"));
    assert_eq!(metrics["vqa"]["overall"], got["official_overall"]);
    assert_eq!(got["answers_equal"], true);
    assert_eq!(got["questions"], metrics["vqa"]["questions"]);
    // a results file with real accuracy scores the same against our annotations and the original
    let score = |ann: &Path| {
        let out = ok(mplug()
            .args(["score", "vqa", "--results"])
            .arg(vqa_out.join("majority.json"))
            .arg("--annotations")
            .arg(ann)
            .output()
            .unwrap());
        out.lines().next().unwrap().to_string()
    };
    let ours = score(&vqa_out.join("annotations.json"));
    assert!(!ours.contains(" 0.00 "), "{ours}");
    assert_eq!(ours, score(&raw.join("v2_mscoco_val2014_annotations.json")));

    let scored = t.path().join("last_ref_score.json");
    ok(mplug()
        .args(["score", "caption", "--results"])
        .arg(cap_out.join("last_ref.json"))
        .arg("--annotations")
        .arg(cap_out.join("references.json"))
        .arg("--out")
        .arg(&scored)
        .output()
        .unwrap());
    let cider = read(&scored)["metrics"]["CIDEr"].as_f64().unwrap();
    let want = got["last_ref_cider"].as_f64().unwrap();
    assert!(
        want > 1.0 && (cider - want).abs() <= 1e-9,
        "{cider} vs {want}"
    );
    let metrics = read(&cap_out.join("metrics.json"));
    assert_eq!(metrics["caption"]["images"], got["caption_images"]);
    for (k, want) in got["caption"].as_object().unwrap() {
        let ours = metrics["caption"]["metrics"][k].as_f64().unwrap();
        let want = want.as_f64().unwrap();
        assert!(
            (ours - want).abs() <= 1e-9,
            "{k}: ours {ours}, COCOEvalCap {want}"
        );
    }
}

/// Wrong input is refused with exit 2 before anything is written: a split the dataset lacks (the
/// message lists the splits it has), weights of another config (named by the first mismatching
/// key), a dataset of another schema.
#[test]
fn eval_refuses_wrong_splits_weights_and_data() {
    let t = tempfile::tempdir().unwrap();
    let coco = synth_coco_dataset(t.path(), 6, 2);
    let other = t.path().join("tiny_patch8.safetensors");
    ok(mplug()
        .current_dir(repo())
        .args(["model", "init", "--config", "configs/tiny.yaml", "--out"])
        .arg(&other)
        .output()
        .unwrap());
    let refused = |task: &str, weights: &Path, split: &str, want: &str| {
        let out_dir = t.path().join(format!("out_{task}_{split}"));
        let out = mplug()
            .current_dir(repo())
            .args(["eval", task, "--quiet", "--device", "cpu", "--config"])
            .arg(format!("configs/{task}_tiny.yaml"))
            .arg("--weights")
            .arg(weights)
            .arg("--data")
            .arg(&coco)
            .args(["--split", split, "--out"])
            .arg(&out_dir)
            .arg("--vocab")
            .arg(vocab())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(want), "{err}");
        assert!(!out_dir.exists(), "nothing written on refusal");
    };
    refused("caption", &other, "val", "its splits: train (");
    refused(
        "caption",
        &other,
        "train",
        "first mismatching key visual_encoder.visual.conv1.weight",
    );
    refused("vqa", &other, "train", "no `image_qa.v1` dataset under");
}

/// Generated ids decode as the reference's `tokenizer.decode(ids)` + `[SEP]/[CLS]/[PAD]` removal +
/// strip (transformers' slow BertTokenizer as the oracle): word pieces, punctuation and clitics the
/// clean-up re-attaches, special tokens mid-sequence, ids outside the vocab, and random sequences.
#[test]
fn generated_ids_decode_as_transformers() {
    use mplug::text::decode::decode_generated;
    let tok = mplug::text::BertTokenizer::from_vocab_file(&vocab()).unwrap();
    let id = |t: &str| tok.token_to_id(t).unwrap() as i64;
    let mut seqs: Vec<Vec<i64>> = vec![
        vec![101, id("a"), id("t"), id("-"), id("shirt"), id("."), 102],
        vec![
            101,
            id("don"),
            id("'"),
            id("t"),
            id("know"),
            id("?"),
            102,
            0,
            0,
        ],
        vec![
            101,
            id("he"),
            id("'"),
            id("s"),
            id("'"),
            id("m"),
            id("'"),
            id("re"),
            id("!"),
        ],
        vec![
            101,
            id("it"),
            id("n"),
            id("'"),
            id("t"),
            id(","),
            id("ok"),
            id("'"),
            id("ve"),
        ],
        vec![
            101,
            id("play"),
            id("##ing"),
            id("##s"),
            102,
            id("after"),
            100,
            103,
        ],
        vec![101, 102],
        vec![101],
        vec![101, 40000, id("x")],
        vec![101, id("'"), id("'"), id("."), id("."), id("##a")],
    ];
    // random ids over the whole vocab, as random weights generate
    let mut state = 0x9e3779b97f4a7c15u64;
    for len in [3usize, 8, 25] {
        for _ in 0..20 {
            let mut s = vec![101];
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                s.push((state % 30522) as i64);
            }
            seqs.push(s);
        }
    }
    let script = r#"
import json, sys
from transformers import BertTokenizer
tok = BertTokenizer(sys.argv[1], do_lower_case=True)
out = []
for ids in json.load(sys.stdin):
    t = tok.decode(ids, clean_up_tokenization_spaces=True)
    out.append(t.replace("[SEP]", "").replace("[CLS]", "").replace("[PAD]", "").strip())
print(json.dumps(out))
"#;
    let mut child = Command::new(python())
        .arg("-c")
        .arg(script)
        .arg(vocab())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&seqs).unwrap().as_bytes())
        .unwrap();
    let out = ok(child.wait_with_output().unwrap());
    let want: Vec<String> = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(want.len(), seqs.len());
    for (s, w) in seqs.iter().zip(&want) {
        assert_eq!(&decode_generated(&tok, s), w, "{s:?}");
    }
    assert_eq!(want[0], "a t - shirt.", "the reference doc's example");
}

/// `mplug eval retrieval` equals the reference procedure written from the doc in PyTorch + numpy
/// (texts padded to 30, ITC without temperature, top-k re-scored by the ITM positive logit, the
/// reference's `itm_eval` with numpy's argsort): ITC and both ITM matrices within 1e-4, the recalls
/// exactly, with a k_test (16) below the number of texts and images.
#[test]
fn eval_retrieval_equals_the_reference_procedure() {
    let t = tempfile::tempdir().unwrap();
    let ck = random_checkpoint(t.path());
    let coco = synth_coco_dataset(t.path(), 30, 8);
    let out = t.path().join("retrieval_out");
    ok(mplug()
        .current_dir(repo())
        .args(["eval", "retrieval", "--quiet", "--device", "cpu"])
        .args(["--config", "configs/retrieval_tiny.yaml", "--weights"])
        .arg(&ck)
        .arg("--data")
        .arg(&coco)
        .args([
            "--split",
            "train",
            "--k-test",
            "16",
            "--save-scores",
            "--out",
        ])
        .arg(&out)
        .arg("--vocab")
        .arg(vocab())
        .output()
        .unwrap());
    let want = run_reference(
        "retrieval",
        &ck,
        &coco,
        &[
            "--split",
            "train",
            "--batch-size",
            "16",
            "--beam-size",
            "1",
            "--min-length",
            "1",
            "--max-length",
            "1",
            "--k-test",
            "16",
        ],
    );
    let ours = tch::Tensor::read_safetensors(out.join("scores.safetensors")).unwrap();
    assert_eq!(ours.len(), 3);
    for (name, t) in &ours {
        let got = Vec::<Vec<f64>>::try_from(t.to_kind(tch::Kind::Double)).unwrap();
        let exp: Vec<Vec<f64>> = serde_json::from_value(want[name].clone()).unwrap();
        assert_eq!(got.len(), exp.len(), "{name}");
        let diff = got
            .iter()
            .flatten()
            .zip(exp.iter().flatten())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(diff < 1e-4, "{name}: max |diff| {diff}");
    }
    let results = read(&out.join("results.json"));
    assert!(results["r_mean"].as_f64().unwrap() > 0.0);
    // (median ranks are compared in the video test: here ranks past k_test tie at −100, where
    // numpy's unstable argsort and our stable order may differ)
    for (k, v) in want["recall"].as_object().unwrap() {
        if k.ends_with("mdR") {
            continue;
        }
        let (a, b) = (results[k].as_f64().unwrap(), v.as_f64().unwrap());
        assert!((a - b).abs() < 1e-9, "{k}: ours {a}, reference {b}");
    }
}

/// `mplug eval grounding` on the synthetic RefCOCO equals the reference procedure written from the
/// doc (TransVG resize with PIL bilinear, ImageNet normalisation, zero canvas, `[CLS] … [SEP]` padded
/// to 20, 4 greedy masked steps from `[unused339]`): the model inputs (images within 1e-6, ids
/// exactly), the four coordinate tokens, the normalised ground truth and the IoU.
#[test]
fn eval_grounding_equals_the_reference_procedure() {
    let t = tempfile::tempdir().unwrap();
    let ck = random_checkpoint(t.path());
    let raw = t.path().join("raw");
    ok(mplug()
        .args(["synth", "--images", "30", "--seed", "7", "--out"])
        .arg(&raw)
        .output()
        .unwrap());
    let data = t.path().join("refcoco");
    ok(mplug()
        .args(["ingest", "refcoco", "--quiet", "--annotations"])
        .arg(raw.join("refcoco/refs(unc).p"))
        .arg(raw.join("refcoco/instances.json"))
        .arg("--images")
        .arg(raw.join("refcoco/images"))
        .arg("--out")
        .arg(&data)
        .arg("--vocab")
        .arg(vocab())
        .args(["--max-side", "200"])
        .output()
        .unwrap());
    let out = t.path().join("grounding_out");
    let summary = eval(
        "grounding",
        &ck,
        &data,
        "train",
        &out,
        &["--batch-size", "6", "--save-inputs"],
    );
    assert!(summary.contains("accuracy (IoU >= 0.5)"), "{summary}");
    let want_inputs = t.path().join("ref_inputs.safetensors");
    let want = run_reference(
        "grounding",
        &ck,
        &data,
        &[
            "--save-inputs",
            want_inputs.to_str().unwrap(),
            "--split",
            "train",
            "--batch-size",
            "6",
            "--beam-size",
            "1",
            "--min-length",
            "1",
            "--max-length",
            "1",
        ],
    );
    let ours = tch::Tensor::read_safetensors(out.join("inputs.safetensors")).unwrap();
    let theirs = tch::Tensor::read_safetensors(&want_inputs).unwrap();
    let get = |v: &[(String, tch::Tensor)], k: &str| {
        v.iter().find(|(n, _)| n == k).unwrap().1.shallow_clone()
    };
    let diff = (get(&ours, "images") - get(&theirs, "images"))
        .abs()
        .max()
        .double_value(&[]);
    assert!(diff < 1e-6, "images differ by {diff}");
    assert!(get(&ours, "input_ids").equal(&get(&theirs, "input_ids")));
    let results = read(&out.join("results.json"));
    let (results, want) = (results.as_array().unwrap(), want.as_array().unwrap());
    assert_eq!(results.len(), want.len());
    assert!(results.len() > 20);
    for (r, w) in results.iter().zip(want) {
        assert_eq!(
            format!("{}#{}", r["image_id"].as_str().unwrap(), r["sent_id"]),
            w["id"]
        );
        assert_eq!(r["tokens"], w["tokens"]);
        assert!((r["iou"].as_f64().unwrap() - w["iou"].as_f64().unwrap()).abs() < 1e-9);
        let (g, e): (Vec<f64>, Vec<f64>) = (
            serde_json::from_value(r["gt_norm"].clone()).unwrap(),
            serde_json::from_value(w["gt_norm"].clone()).unwrap(),
        );
        assert!(
            g.iter().zip(&e).all(|(a, b)| (a - b).abs() < 1e-12),
            "{g:?} {e:?}"
        );
    }
}

/// `mplug eval vqa --rank-answers` equals the reference's `rank_answer` (first-token top k_test =
/// 8 of the list, re-scored with the first token counted twice) written in PyTorch from the doc, with
/// transformers' tokenizer for the answers: the same answer for every question.
#[test]
fn eval_vqa_rank_answers_equals_the_reference() {
    let t = tempfile::tempdir().unwrap();
    let ck = random_checkpoint(t.path());
    let (vqa, raw) = synth_vqa(t.path());
    let anns: serde_json::Value = serde_json::from_slice(
        &std::fs::read(raw.join("v2_mscoco_train2014_annotations.json")).unwrap(),
    )
    .unwrap();
    let mut answers: Vec<String> = anns["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| a["answers"].as_array().unwrap().clone())
        .map(|a| a["answer"].as_str().unwrap().to_string())
        .collect();
    answers.sort();
    answers.dedup();
    assert!(answers.len() > 8, "{answers:?}");
    let list = t.path().join("answer_list.json");
    std::fs::write(&list, serde_json::to_vec(&answers).unwrap()).unwrap();
    let out = t.path().join("ranked");
    eval(
        "vqa",
        &ck,
        &vqa,
        "val",
        &out,
        &[
            "--batch-size",
            "5",
            "--rank-answers",
            list.to_str().unwrap(),
        ],
    );
    let want = run_reference(
        "vqa",
        &ck,
        &vqa,
        &[
            "--answer-list",
            list.to_str().unwrap(),
            "--split",
            "val",
            "--batch-size",
            "5",
            "--beam-size",
            "1",
            "--min-length",
            "1",
            "--max-length",
            "1",
            "--k-test",
            "8",
        ],
    );
    same_as_reference(&out, &want, "question_id", "answer");
    let chosen: std::collections::HashSet<&str> = want
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["text"].as_str().unwrap())
        .collect();
    assert!(chosen.iter().all(|c| answers.iter().any(|a| a == c)));
}

/// `mplug eval video-qa` on the synthetic MSRVTT-QA equals the reference procedure (frames squashed
/// and concatenated, `rank_answer` over the train split's answers with k_test 8) written in PyTorch:
/// the same answer and probability for every question, and the accuracy from the same matches.
#[cfg(feature = "video")]
#[test]
fn eval_video_qa_equals_the_reference_procedure() {
    let t = tempfile::tempdir().unwrap();
    let ck = random_checkpoint(t.path());
    let raw = t.path().join("raw");
    ok(mplug()
        .args(["synth", "--video", "--clips", "8", "--out"])
        .arg(&raw)
        .output()
        .unwrap());
    let data = t.path().join("msrvtt_qa");
    let mut ingest = mplug();
    ingest
        .args(["ingest", "msrvtt", "--quiet", "--pipeline", "msrvtt-qa"])
        .args(["--frames", "4", "--size", "48", "--out"])
        .arg(&data)
        .arg("--videos")
        .arg(raw.join("msrvtt/videos"))
        .arg("--vocab")
        .arg(vocab())
        .arg("--annotations");
    for split in ["train", "val", "test"] {
        ingest.arg(raw.join(format!("msrvtt/annotations/{split}_qa.json")));
    }
    ok(ingest.output().unwrap());
    let out = t.path().join("video_qa_out");
    let summary = ok(mplug()
        .current_dir(repo())
        .args(["eval", "video-qa", "--quiet", "--device", "cpu"])
        .args(["--config", "configs/videoqa_tiny.yaml", "--weights"])
        .arg(&ck)
        .arg("--data")
        .arg(&data)
        .args(["--split", "test", "--batch-size", "3", "--out"])
        .arg(&out)
        .arg("--vocab")
        .arg(vocab())
        .output()
        .unwrap());
    assert!(summary.contains("accuracy (exact match)"), "{summary}");
    let want = run_reference(
        "video-qa",
        &ck,
        &data,
        &[
            "--split",
            "test",
            "--batch-size",
            "3",
            "--beam-size",
            "1",
            "--min-length",
            "1",
            "--max-length",
            "1",
            "--k-test",
            "8",
        ],
    );
    let results = read(&out.join("results.json"));
    let (results, want) = (results.as_array().unwrap(), want.as_array().unwrap());
    assert_eq!(results.len(), want.len());
    assert!(!want.is_empty());
    for (r, w) in results.iter().zip(want) {
        assert_eq!(r["question_id"].to_string(), w["id"].as_str().unwrap());
        assert_eq!(r["answer"], w["text"]);
        let (p, q) = (
            r["probability"].as_f64().unwrap(),
            w["prob"].as_f64().unwrap(),
        );
        assert!((p - q).abs() < 1e-4, "{p} vs {q}");
    }
    let correct = want.iter().filter(|w| w["correct"] == true).count();
    let metrics = read(&out.join("metrics.json"));
    assert_eq!(metrics["video_qa"]["correct"], correct);
}

/// `mplug eval video-retrieval` equals BLIP/mPLUG's zero-shot video retrieval written in PyTorch from
/// the doc (frames squashed, the mean of the frames' projected CLS normalised, ITM over all frames'
/// tokens, score = ITM + ITC, texts padded to 35): score matrices within 1e-4, recalls and median
/// ranks exactly. k_test covers every candidate, so no −100 ties decide a rank.
#[cfg(feature = "video")]
#[test]
fn eval_video_retrieval_equals_the_reference_procedure() {
    let t = tempfile::tempdir().unwrap();
    let ck = random_checkpoint(t.path());
    let raw = t.path().join("raw");
    ok(mplug()
        .args(["synth", "--video", "--clips", "8", "--out"])
        .arg(&raw)
        .output()
        .unwrap());
    let data = t.path().join("msrvtt");
    ok(mplug()
        .args([
            "ingest", "msrvtt", "--quiet", "--frames", "3", "--size", "40", "--out",
        ])
        .arg(&data)
        .arg("--videos")
        .arg(raw.join("msrvtt/videos"))
        .arg("--vocab")
        .arg(vocab())
        .arg("--annotations")
        .arg(raw.join("msrvtt/annotations/train_val_videodatainfo.json"))
        .output()
        .unwrap());
    let out = t.path().join("video_retrieval_out");
    ok(mplug()
        .current_dir(repo())
        .args(["eval", "video-retrieval", "--quiet", "--device", "cpu"])
        .args(["--config", "configs/retrieval_tiny.yaml", "--weights"])
        .arg(&ck)
        .arg("--data")
        .arg(&data)
        .args([
            "--split",
            "train",
            "--k-test",
            "1000",
            "--save-scores",
            "--out",
        ])
        .arg(&out)
        .arg("--vocab")
        .arg(vocab())
        .output()
        .unwrap());
    let want = run_reference(
        "retrieval",
        &ck,
        &data,
        &[
            "--video",
            "--split",
            "train",
            "--batch-size",
            "16",
            "--beam-size",
            "1",
            "--min-length",
            "1",
            "--max-length",
            "1",
            "--k-test",
            "1000",
        ],
    );
    let ours = tch::Tensor::read_safetensors(out.join("scores.safetensors")).unwrap();
    for (name, t) in &ours {
        let got = Vec::<Vec<f64>>::try_from(t.to_kind(tch::Kind::Double)).unwrap();
        let exp: Vec<Vec<f64>> = serde_json::from_value(want[name].clone()).unwrap();
        assert!(got.len() > 3, "{name}");
        assert_eq!(got.len(), exp.len(), "{name}");
        let diff = got
            .iter()
            .flatten()
            .zip(exp.iter().flatten())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(diff < 1e-4, "{name}: max |diff| {diff}");
    }
    let metrics = read(&out.join("metrics.json"));
    for (k, v) in want["recall"].as_object().unwrap() {
        let ours = if k.ends_with("mdR") {
            &metrics["median_rank"][k]
        } else {
            &metrics["retrieval"][k]
        };
        let (a, b) = (ours.as_f64().unwrap(), v.as_f64().unwrap());
        assert!((a - b).abs() < 1e-9, "{k}: ours {a}, reference {b}");
    }
}

/// `mplug eval video-caption` on the synthetic VATEX equals the reference procedure (frames
/// concatenated, the `[CLS] a picture` prompt quirk, beam search, the prefix post-processing) in
/// PyTorch: token ids and captions, in the `{videoID: caption}` submission format.
#[cfg(feature = "video")]
#[test]
fn eval_video_caption_equals_the_reference_procedure() {
    let t = tempfile::tempdir().unwrap();
    let ck = random_checkpoint(t.path());
    let raw = t.path().join("raw");
    ok(mplug()
        .args(["synth", "--video", "--clips", "6", "--out"])
        .arg(&raw)
        .output()
        .unwrap());
    let data = t.path().join("msrvtt");
    ok(mplug()
        .args([
            "ingest", "msrvtt", "--quiet", "--frames", "2", "--size", "40", "--out",
        ])
        .arg(&data)
        .arg("--videos")
        .arg(raw.join("msrvtt/videos"))
        .arg("--vocab")
        .arg(vocab())
        .arg("--annotations")
        .arg(raw.join("msrvtt/annotations/train_val_videodatainfo.json"))
        .output()
        .unwrap());
    let out = t.path().join("video_caption_out");
    ok(mplug()
        .current_dir(repo())
        .args(["eval", "video-caption", "--quiet", "--device", "cpu"])
        .args(["--config", "configs/videocap_tiny.yaml", "--weights"])
        .arg(&ck)
        .arg("--data")
        .arg(&data)
        .args([
            "--split",
            "train",
            "--batch-size",
            "3",
            "--save-tokens",
            "--out",
        ])
        .arg(&out)
        .arg("--vocab")
        .arg(vocab())
        .output()
        .unwrap());
    let want = run_reference(
        "video-caption",
        &ck,
        &data,
        &[
            "--split",
            "train",
            "--batch-size",
            "3",
            "--beam-size",
            "3",
            "--min-length",
            "4",
            "--max-length",
            "8",
        ],
    );
    let results = read(&out.join("results.json"));
    let tokens = read(&out.join("tokens.json"));
    let want = want.as_array().unwrap();
    assert_eq!(results.as_object().unwrap().len(), want.len());
    assert!(!want.is_empty());
    for (w, t) in want.iter().zip(tokens.as_array().unwrap()) {
        let id = w["id"].as_str().unwrap();
        assert_eq!(t["id"], id);
        assert_eq!(t["tokens"], w["tokens"], "{id}");
        assert_eq!(results[id], w["text"], "{id}");
        let toks: Vec<i64> = serde_json::from_value(w["tokens"].clone()).unwrap();
        assert_eq!(&toks[..3], &[101, 1037, 3861], "[CLS] a picture");
    }
}

/// `mplug eval snli-ve` (ALBEF's cls_head on the fused text CLS, mPLUG having released none) equals
/// the same design written in PyTorch: weights = the random released-format checkpoint converted to
/// safetensors plus random `cls_head.{0,2}` tensors; the same predicted class for every hypothesis,
/// the accuracy from the same matches; weights without the head are refused (exit 2).
#[test]
fn eval_snli_ve_equals_the_reference_design() {
    statement_task_equals_reference("snli-ve", "snli_ve", 1, 3, "pair_id");
}

/// `mplug eval nlvr2` (the pair design: the statement fused with each image, the fused CLS
/// concatenated into `cls_head`) equals the same design written in PyTorch on synthetic NLVR2 pairs,
/// as the SNLI-VE test; SNLI-VE data is refused by `eval nlvr2` (exit 2, naming the right command).
#[test]
fn eval_nlvr2_equals_the_reference_design() {
    statement_task_equals_reference("nlvr2", "nlvr2", 2, 2, "identifier");
}

fn statement_task_equals_reference(
    task: &str,
    dir: &str,
    images: usize,
    classes: usize,
    id_key: &str,
) {
    let t = tempfile::tempdir().unwrap();
    let ck = random_checkpoint(t.path());
    let raw = t.path().join("raw");
    synth_raw(&raw, 30, 6);
    let ingest = |what: &str, dir: &str| {
        let d = raw.join(dir);
        ingest_folder(what, &d, &d.join("images"), &t.path().join(dir), &[])
    };
    let data = ingest(task, dir);
    let config = format!("configs/{dir}_tiny.yaml");
    let split = "train";
    let head = t.path().join("head.safetensors");
    let weights = t.path().join("task.safetensors");
    ok(mplug()
        .current_dir(repo())
        .arg("convert")
        .arg(&ck)
        .arg(&weights)
        .args(["--config", &config])
        .output()
        .unwrap());
    let script = r#"
import sys, torch
sys.path.insert(0, "tests/py")
from mplug_reference import st_read, st_write
n, classes = int(sys.argv[3]), int(sys.argv[4])
g = torch.Generator().manual_seed(11)
head = {"cls_head.0.weight": torch.randn(32, 32 * n, generator=g) * 20, "cls_head.0.bias": torch.zeros(32),
        "cls_head.2.weight": torch.randn(classes, 32, generator=g), "cls_head.2.bias": torch.zeros(classes)}
st_write(sys.argv[1], head)
w = st_read(sys.argv[2]); w.update(head); st_write(sys.argv[2], w)
"#;
    let eval = |data: &Path, out: &Path| {
        mplug()
            .current_dir(repo())
            .args(["eval", task, "--quiet", "--device", "cpu"])
            .args(["--config", &config, "--weights"])
            .arg(&weights)
            .arg("--data")
            .arg(data)
            .args(["--split", split, "--batch-size", "7", "--out"])
            .arg(out)
            .arg("--vocab")
            .arg(vocab())
            .output()
            .unwrap()
    };
    // first without the head: refused
    let out = t.path().join("task_out");
    let refused = eval(&data, &out);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("cls_head"));
    assert!(!out.exists(), "nothing written on a refusal");
    ok(Command::new(python())
        .current_dir(repo())
        .arg("-c")
        .arg(script)
        .arg(&head)
        .arg(&weights)
        .arg(images.to_string())
        .arg(classes.to_string())
        .output()
        .unwrap());
    if task == "nlvr2" {
        // one-image statements are not pairs
        let other = ingest("snli-ve", "snli_ve");
        let wrong = eval(&other, &t.path().join("wrong"));
        assert_eq!(wrong.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&wrong.stderr).contains("mplug eval snli-ve"));
    }
    ok(eval(&data, &out));
    let want = run_reference(
        task,
        &ck,
        &data,
        &[
            "--head",
            head.to_str().unwrap(),
            "--split",
            split,
            "--batch-size",
            "7",
            "--beam-size",
            "1",
            "--min-length",
            "1",
            "--max-length",
            "1",
        ],
    );
    let results = read(&out.join("results.json"));
    let (results, want) = (results.as_array().unwrap(), want.as_array().unwrap());
    assert_eq!(results.len(), want.len());
    assert!(results.len() > 5, "{}", results.len());
    let predicted: std::collections::HashSet<i64> = want
        .iter()
        .map(|w| w["predicted"].as_i64().unwrap())
        .collect();
    assert!(
        predicted.len() > 1,
        "the head must not predict one class only: {predicted:?}"
    );
    for (r, w) in results.iter().zip(want) {
        assert_eq!(r[id_key], w["id"]);
        assert_eq!(r["predicted"], w["predicted"]);
        assert_eq!(r["label"], w["label"]);
    }
    let correct = want.iter().filter(|w| w["predicted"] == w["label"]).count();
    let metrics = read(&out.join("metrics.json"));
    assert_eq!(metrics[dir]["correct"], correct);
    assert_eq!(metrics["task"], dir);
}
