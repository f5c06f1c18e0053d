//! `mplug score` against the official metric code (issue 17): pycocoevalcap 1.2 (its Java PTB
//! tokenizer, Bleu, Rouge, Cider) for captions, and the official VQA evaluation (salesforce-lavis's
//! vqa_tools copy, and the same class with GT-Vision-Lab's 2021 `evaluate`) for VQA, on generated
//! hard cases (tests/py/caption_oracle.py, tests/py/vqa_oracle.py).

use std::path::Path;
use std::process::Command;

use crate::common::{mplug, ok, python, repo};

fn oracle(script: &str, args: &[&std::ffi::OsStr]) -> serde_json::Value {
    let out = Command::new(python())
        .arg(repo().join("tests/py").join(script))
        .args(args)
        .output()
        .unwrap();
    let text = ok(out);
    // the last line is the JSON (Java's tokenizer reports on stderr)
    serde_json::from_str(text.lines().last().unwrap_or("")).unwrap_or(serde_json::Value::Null)
}

fn read(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn close(a: &serde_json::Value, b: &serde_json::Value, what: &str) {
    let (x, y) = (a.as_f64().unwrap(), b.as_f64().unwrap());
    assert!((x - y).abs() <= 1e-9, "{what}: ours {x} vs official {y}");
}

/// Every caption tokenised as the Java PTBTokenizer does, and BLEU-1..4, ROUGE-L, CIDEr-D and METEOR
/// (through the same jar) equal to pycocoevalcap's to 1e-9, corpus and per image (punctuation, quotes, brackets, clitics,
/// numbers, abbreviations, unicode, curly quotes, empty, punctuation-only and 400-word candidates).
#[test]
fn caption_metrics_equal_pycocoevalcap() {
    let t = tempfile::tempdir().unwrap();
    oracle(
        "caption_oracle.py",
        &["make".as_ref(), t.path().as_os_str()],
    );
    let (ann, res) = (
        t.path().join("annotations.json"),
        t.path().join("results.json"),
    );
    let official = oracle(
        "caption_oracle.py",
        &["score".as_ref(), ann.as_os_str(), res.as_os_str()],
    );
    let (out, tok) = (t.path().join("ours.json"), t.path().join("tokens.json"));
    let jar = ok(Command::new(python())
        .arg(repo().join("tests/py/caption_oracle.py"))
        .arg("meteor-jar")
        .output()
        .unwrap());
    let summary = ok(mplug()
        .args(["score", "caption", "--meteor-jar", jar.trim(), "--results"])
        .arg(&res)
        .arg("--annotations")
        .arg(&ann)
        .arg("--out")
        .arg(&out)
        .arg("--tokenized")
        .arg(&tok)
        .output()
        .unwrap());
    assert!(summary.contains("CIDEr"), "{summary}");
    let (ours, tokens) = (read(&out), read(&tok));
    let want = &official["tokenized"];
    for side in ["results", "references"] {
        let w = want[side].as_object().unwrap();
        assert!(w.len() > 100);
        for (id, v) in w {
            assert_eq!(&tokens[side][id], v, "{side} of image {id}");
        }
    }
    assert_eq!(official["metrics"].as_object().unwrap().len(), 7);
    for (name, v) in official["metrics"].as_object().unwrap() {
        close(&ours["metrics"][name], v, name);
    }
    for (id, m) in official["per_image"].as_object().unwrap() {
        for (name, v) in m.as_object().unwrap() {
            close(
                &ours["per_image"][id][name],
                v,
                &format!("{name} of image {id}"),
            );
        }
    }
}

/// VQA accuracy (overall, per answer type, per question type, per question) equal to both official
/// behaviours: GT-Vision-Lab's since 2021 (the default) and the older code LAVIS and mPLUG copied.
#[test]
fn vqa_accuracy_equals_the_official_evaluation_in_both_versions() {
    let t = tempfile::tempdir().unwrap();
    oracle("vqa_oracle.py", &["make".as_ref(), t.path().as_os_str()]);
    let ann = t.path().join("annotations.json");
    let ques = t.path().join("questions.json");
    let res = t.path().join("results.json");
    let mut overall = Vec::new();
    for mode in ["official", "legacy"] {
        let official = oracle(
            "vqa_oracle.py",
            &[
                "score".as_ref(),
                ann.as_os_str(),
                ques.as_os_str(),
                res.as_os_str(),
                mode.as_ref(),
            ],
        );
        let out = t.path().join(format!("{mode}.json"));
        ok(mplug()
            .args(["score", "vqa", "--vqa-eval", mode, "--results"])
            .arg(&res)
            .arg("--annotations")
            .arg(&ann)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap());
        let ours = read(&out);
        let acc = &official["accuracy"];
        assert_eq!(ours["overall"], acc["overall"], "{mode}");
        assert_eq!(ours["perAnswerType"], acc["perAnswerType"], "{mode}");
        assert_eq!(ours["perQuestionType"], acc["perQuestionType"], "{mode}");
        assert_eq!(ours["evalQA"], official["evalQA"], "{mode}");
        overall.push(acc["overall"].as_f64().unwrap());
    }
    assert_ne!(
        overall[0], overall[1],
        "the cases must tell the two versions apart"
    );
}

/// Results that do not fit the annotations are a clear error (exit 2) naming the ids.
#[test]
fn results_with_unknown_or_missing_ids_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let ann = t.path().join("ann.json");
    let answers: Vec<serde_json::Value> = (1..=10)
        .map(|i| serde_json::json!({"answer": "yes", "answer_id": i}))
        .collect();
    std::fs::write(
        &ann,
        serde_json::json!({"annotations": [
            {"question_id": 1, "question_type": "is the", "answer_type": "yes/no", "answers": answers},
            {"question_id": 2, "question_type": "is the", "answer_type": "yes/no", "answers": answers}
        ]})
        .to_string(),
    )
    .unwrap();
    let cases = [
        (
            r#"[{"question_id": 1, "answer": "yes"}, {"question_id": 7, "answer": "no"}]"#,
            "not in the annotations: 7",
        ),
        (
            r#"[{"question_id": 1, "answer": "yes"}]"#,
            "no answer for 1 annotated question(s): 2",
        ),
        (
            r#"[{"image_id": 1, "caption": "a dog"}]"#,
            "has no integer `question_id`",
        ),
        (r#"{"question_id": 1}"#, "expected a list"),
    ];
    for (results, want) in cases {
        let res = t.path().join("res.json");
        std::fs::write(&res, results).unwrap();
        refused("vqa", &res, &ann, want);
    }
    // a caption for an image without references
    let caps = t.path().join("caps.json");
    std::fs::write(
        &caps,
        r#"{"annotations": [{"image_id": 5, "caption": "a cat"}]}"#,
    )
    .unwrap();
    let res = t.path().join("cres.json");
    std::fs::write(&res, r#"[{"image_id": 6, "caption": "a cat"}]"#).unwrap();
    refused("caption", &res, &caps, "no reference captions: 6");
}

/// `mplug score TASK` must exit 2 with `want` in its error.
fn refused(task: &str, results: &Path, annotations: &Path, want: &str) {
    let out = mplug()
        .args(["score", task, "--results"])
        .arg(results)
        .arg("--annotations")
        .arg(annotations)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{task}: {err}");
    assert!(err.contains(want), "{task}: {err}");
}

/// `mplug synth` writes the shapes world as VQA v2: the official VQA API (salesforce-lavis's copy)
/// loads it and accepts a results file of the majority answers, `mplug score vqa` gives that file the
/// same accuracy as the official evaluation, `mplug ingest vqa` keeps every question, and every
/// count question's majority answer is the number the image's COCO caption states.
#[test]
fn synth_vqa_v2_is_official_format_and_ingests() {
    let t = tempfile::tempdir().unwrap();
    let raw = t.path().join("raw");
    ok(mplug()
        .args(["synth", "--images", "40", "--seed", "3", "--out"])
        .arg(&raw)
        .output()
        .unwrap());
    let vqa = raw.join("vqa");
    let script = r#"
import json, sys, re
sys.path.insert(0, sys.argv[3])
import vqa_oracle
vqa_mod = vqa_oracle.load("vqa")
raw = sys.argv[1]
out = {}
for sub in ["train2014", "val2014"]:
    q = f"{raw}/vqa/v2_OpenEnded_mscoco_{sub}_questions.json"
    a = f"{raw}/vqa/v2_mscoco_{sub}_annotations.json"
    import io, contextlib
    with contextlib.redirect_stdout(io.StringIO()):
        api = vqa_mod.VQA(a, q)
    out[sub] = len(api.getQuesIds())
    if sub == "val2014":
        res = [{"question_id": ann["question_id"], "answer": ann["multiple_choice_answer"]}
               for ann in json.load(open(a))["annotations"]]
        json.dump(res, open(sys.argv[2], "w"))
        with contextlib.redirect_stdout(io.StringIO()):
            api.loadRes(sys.argv[2], q)
# count questions vs the captions ("two shapes are shown: ...", "a single shape is shown")
words = {"a single": 1, "two": 2, "three": 3, "four": 4, "five": 5}
caps = {}
for f in ["captions_train2017.json", "captions_val2017.json"]:
    for ann in json.load(open(f"{raw}/annotations/{f}"))["annotations"]:
        m = re.match(r"(a single|two|three|four|five) shapes? (is|are) shown", ann["caption"])
        if m:
            caps[ann["image_id"]] = words[m.group(1)]
checked = 0
for sub in ["train2014", "val2014"]:
    for ann in json.load(open(f"{raw}/vqa/v2_mscoco_{sub}_annotations.json"))["annotations"]:
        if ann["question_type"] == "how many":
            assert int(ann["multiple_choice_answer"]) == caps[ann["image_id"]], ann
            checked += 1
out["counts_checked"] = checked
print(json.dumps(out))
"#;
    let results = t.path().join("majority.json");
    let py = ok(Command::new(python())
        .arg("-c")
        .arg(script)
        .arg(&raw)
        .arg(&results)
        .arg(repo().join("tests/py"))
        .output()
        .unwrap());
    let counts: serde_json::Value = serde_json::from_str(py.trim()).unwrap();
    let total = counts["train2014"].as_u64().unwrap() + counts["val2014"].as_u64().unwrap();
    assert_eq!(total, 40 * 4, "four questions per image");
    assert_eq!(counts["counts_checked"], 40);

    // our score of the majority answers equals the official evaluation's
    let ann = vqa.join("v2_mscoco_val2014_annotations.json");
    let ques = vqa.join("v2_OpenEnded_mscoco_val2014_questions.json");
    let official = oracle(
        "vqa_oracle.py",
        &[
            "score".as_ref(),
            ann.as_os_str(),
            ques.as_os_str(),
            results.as_os_str(),
            "official".as_ref(),
        ],
    );
    let out = t.path().join("score.json");
    ok(mplug()
        .args(["score", "vqa", "--results"])
        .arg(&results)
        .arg("--annotations")
        .arg(&ann)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap());
    assert_eq!(read(&out)["overall"], official["accuracy"]["overall"]);

    let files: Vec<std::path::PathBuf> = std::fs::read_dir(&vqa)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let data = t.path().join("data");
    ok(mplug()
        .args(["ingest", "vqa", "--quiet", "--annotations"])
        .args(&files)
        .arg("--images")
        .arg(raw.join("images"))
        .arg("--out")
        .arg(&data)
        .arg("--vocab")
        .arg(crate::common::vocab())
        .output()
        .unwrap());
    let m = read(&data.join("manifest.json"));
    assert_eq!(m["rejects"], serde_json::json!([]));
    assert_eq!(m["totals"]["images_written"], 40);
    assert_eq!(m["totals"]["questions_written"], total, "{}", m["totals"]);
}

/// `mplug synth` writes the shapes world as SNLI-VE and NLVR2: both ingest without a reject; the
/// labels of SNLI-VE's count statements and of every NLVR2 statement agree with the counts, colours
/// and shapes the COCO captions state (NLVR2 images are traced back to their COCO files through the
/// file system, not through our writer), and NLVR2's labels are half true, as NLVR2 balances them.
#[test]
fn synth_snli_ve_and_nlvr2_labels_agree_with_the_captions() {
    let t = tempfile::tempdir().unwrap();
    let raw = t.path().join("raw");
    ok(mplug()
        .args(["synth", "--images", "40", "--seed", "4", "--out"])
        .arg(&raw)
        .output()
        .unwrap());
    let script = r#"
import json, os, re, sys, glob
raw = sys.argv[1]
words = {"a single": 1, "two": 2, "three": 3, "four": 4, "five": 5}
count, colours, shapes, file_of = {}, {}, {}, {}
for f in ["captions_train2017.json", "captions_val2017.json"]:
    doc = json.load(open(f"{raw}/annotations/{f}"))
    for im in doc["images"]:
        file_of[im["id"]] = f"{raw}/images/{f[9:-5]}/{im['file_name']}"
    for ann in doc["annotations"]:
        m = re.match(r"(a single|two|three|four|five) shapes? (is|are) shown: (.*)", ann["caption"])
        if m:
            count[ann["image_id"]] = words[m.group(1)]
            # "two black triangles and a blue circle": the colours and shapes present
            items = [re.match(r"(?:a|an|one|two|three|four) (\w+) (circle|square|triangle)", x)
                     for x in re.split(r", | and ", m.group(3))]
            colours[ann["image_id"]] = {x.group(1) for x in items}
            shapes[ann["image_id"]] = {x.group(2) for x in items}
by_inode = {os.stat(p).st_ino: i for i, p in file_of.items()}
nums = {"no": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
snli = nlvr = 0
for f in glob.glob(f"{raw}/snli_ve/*.jsonl"):
    for line in open(f):
        r = json.loads(line)
        m = re.match(r"There (?:is|are) (\w+) shapes? in the picture\.", r["sentence2"])
        if m:
            holds = nums[m.group(1)] == count[int(r["Flickr30K_ID"])]
            assert (r["gold_label"] == "entailment") == holds, r
            snli += 1
labels = {"True": 0, "False": 0}
for f in glob.glob(f"{raw}/nlvr2/*.json"):
    split = os.path.basename(f)[:-5]
    for line in open(f):
        r = json.loads(line)
        labels[r["label"]] += 1
        pair = r["identifier"].rsplit("-", 1)[0]
        d = f"train/{r['directory']}" if split == "train" else split
        ids = [by_inode[os.stat(f"{raw}/nlvr2/images/{d}/{pair}-img{k}.png").st_ino] for k in (0, 1)]
        side = {"left": ids[0], "right": ids[1]}
        s = r["sentence"]
        if m := re.fullmatch(r"The (left|right) image contains more shapes than the (left|right) image\.", s):
            holds = count[side[m.group(1)]] > count[side[m.group(2)]]
        elif m := re.fullmatch(r"Both images contain a (\w+)\.", s):
            holds = all(m.group(1) in shapes[i] for i in ids)
        elif m := re.fullmatch(r"There is an? (\w+) shape in the (left|right) image\.", s):
            holds = m.group(1) in colours[side[m.group(2)]]
        else:
            raise AssertionError(f"unknown NLVR2 sentence: {s}")
        assert (r["label"] == "True") == holds, r
        nlvr += 1
# NLVR2 balances its labels; the synthetic statements are written half true, half false
assert labels["True"] == labels["False"] > 0, labels
print(snli, nlvr)
"#;
    let checked = ok(Command::new(python())
        .arg("-c")
        .arg(script)
        .arg(&raw)
        .output()
        .unwrap());
    let n: Vec<usize> = checked
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    assert!(n[0] >= 20 && n[1] >= 40, "statements checked: {n:?}");
    for (cmd, ann, images, statements) in [
        ("snli-ve", "snli_ve", "snli_ve/images", 120),
        ("nlvr2", "nlvr2", "nlvr2/images", 0),
    ] {
        let files: Vec<std::path::PathBuf> = std::fs::read_dir(raw.join(ann))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        let out = t.path().join(cmd);
        ok(mplug()
            .args(["ingest", cmd, "--quiet", "--annotations"])
            .args(&files)
            .arg("--images")
            .arg(raw.join(images))
            .arg("--out")
            .arg(&out)
            .arg("--vocab")
            .arg(crate::common::vocab())
            .output()
            .unwrap());
        let m = read(&out.join("manifest.json"));
        assert_eq!(m["rejects"], serde_json::json!([]), "{cmd}");
        if statements > 0 {
            assert_eq!(m["totals"]["images_written"], 40);
            assert_eq!(
                m["totals"]["captions_written"], statements,
                "{}",
                m["totals"]
            );
        }
    }
}

/// `mplug score retrieval` equals itm_eval's formulas (numpy, stable argsort reversed) on random
/// score matrices with many ties, read from safetensors (one f64, one f32) with the reference's
/// retrieval test file: the nine recalls and means, both MdRs, every query's rank; a matrix of the
/// wrong shape is refused (exit 2).
#[test]
fn score_retrieval_equals_itm_eval() {
    let t = tempfile::tempdir().unwrap();
    let want = oracle(
        "score_oracle.py",
        &["retrieval".as_ref(), t.path().as_os_str(), "5".as_ref()],
    );
    let report = t.path().join("report.json");
    ok(mplug()
        .args(["score", "retrieval", "--scores"])
        .arg(t.path().join("scores.safetensors"))
        .arg("--annotations")
        .arg(t.path().join("test.json"))
        .arg("--out")
        .arg(&report)
        .output()
        .unwrap());
    let got = read(&report);
    for (k, v) in want["recall"].as_object().unwrap() {
        close(&got["recall"][k], v, k);
    }
    for k in ["txt_mdR", "img_mdR"] {
        close(&got["median_rank"][k], &want["median_rank"][k], k);
    }
    assert_eq!(got["text_ranks"], want["text_ranks"]);
    assert_eq!(got["image_ranks"], want["image_ranks"]);
    let r1 = want["recall"]["txt_r1"].as_f64().unwrap();
    assert!(r1 > 0.0 && r1 < 100.0, "the case must not be trivial: {r1}");
    // annotations of another size
    let small = t.path().join("small.json");
    std::fs::write(&small, r#"[{"image": "a.jpg", "caption": ["x", "y"]}]"#).unwrap();
    let out = mplug()
        .args(["score", "retrieval", "--scores"])
        .arg(t.path().join("scores.safetensors"))
        .arg("--annotations")
        .arg(&small)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 images and 2 texts"));
}

/// `mplug score grounding` equals plain xywh IoU ≥ 0.5 computed in Python from refer's pickle (read
/// with Python's own pickle) and instances.json, for jittered boxes of every expression of a split
/// of the synthetic RefCOCO; a missing expression is refused (exit 2) naming it.
#[test]
fn score_grounding_equals_iou_from_the_refer_files() {
    let t = tempfile::tempdir().unwrap();
    let raw = t.path().join("raw");
    ok(mplug()
        .args(["synth", "--images", "24", "--seed", "3", "--out"])
        .arg(&raw)
        .output()
        .unwrap());
    let (refs, instances) = (
        raw.join("refcoco/refs(unc).p"),
        raw.join("refcoco/instances.json"),
    );
    let results = t.path().join("results.json");
    let want = oracle(
        "score_oracle.py",
        &[
            "grounding".as_ref(),
            refs.as_os_str(),
            instances.as_os_str(),
            results.as_os_str(),
            "9".as_ref(),
        ],
    );
    let split = want["split"].as_str().unwrap();
    let report = t.path().join("report.json");
    let score = |results: &Path| {
        mplug()
            .args(["score", "grounding", "--results"])
            .arg(results)
            .arg("--annotations")
            .arg(&refs)
            .arg(&instances)
            .args(["--split", split, "--out"])
            .arg(&report)
            .output()
            .unwrap()
    };
    ok(score(&results));
    let got = read(&report);
    let ious = want["ious"].as_array().unwrap();
    assert!(ious.len() > 5);
    let correct = want["correct"].as_u64().unwrap() as usize;
    assert!(
        correct > 0 && correct < ious.len(),
        "the jitter must pass some and fail some"
    );
    assert_eq!(got["correct"], want["correct"]);
    close(&got["accuracy"], &want["accuracy"], "accuracy");
    for (g, w) in got["ious"].as_array().unwrap().iter().zip(ious) {
        close(&g[1], w, "iou");
    }
    // drop one expression: refused, naming it
    let mut list = read(&results);
    let dropped = list.as_array_mut().unwrap().pop().unwrap();
    let partial = t.path().join("partial.json");
    std::fs::write(&partial, list.to_string()).unwrap();
    let out = score(&partial);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&dropped["sent_id"].to_string()), "{err}");
}
