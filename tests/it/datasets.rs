//! Image datasets beyond COCO, each on fixtures written in the original formats (and on the real
//! first records in ../shared/samples when present): Visual Genome regions (v1.0 and v1.2 keys) and
//! QA, VQA v2 (official files and ALBEF/mPLUG lists) and Flickr30K token files. Rows are checked
//! by pyarrow against the annotation files (tests/py/check_image_datasets.py), answer weights
//! against the reference's own loop.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{mplug, ok, python, repo, vocab, write_jpeg};
use serde_json::json;

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

fn ingest(dataset: &str, annotations: &[PathBuf], images: &Path, out: &Path) -> Command {
    let mut c = mplug();
    c.args(["ingest", dataset, "--quiet", "--annotations"])
        .args(annotations)
        .arg("--images")
        .arg(images)
        .arg("--out")
        .arg(out)
        .arg("--vocab")
        .arg(vocab())
        .args(["--name", dataset]);
    c
}

fn check(mode: &str, dataset: &Path, files: &[PathBuf]) -> usize {
    let out = Command::new(python())
        .arg(repo().join("tests/py/check_image_datasets.py"))
        .arg(mode)
        .arg(dataset)
        .args(files)
        .output()
        .unwrap();
    ok(out).trim().parse().unwrap()
}

fn write_json(path: &Path, v: &serde_json::Value) -> PathBuf {
    std::fs::write(path, serde_json::to_vec(v).unwrap()).unwrap();
    path.to_path_buf()
}

/// blake3 of each shard file, in name order.
fn shard_hashes(dir: &Path) -> Vec<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("shards"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| {
            blake3::hash(&std::fs::read(f).unwrap())
                .to_hex()
                .to_string()
        })
        .collect()
}

fn rejects_with(m: &serde_json::Value, stage: &str, unit: &str) -> Vec<String> {
    m["rejects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["stage"] == stage && r["unit"] == unit)
        .map(|r| r["sample_id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn vg_regions_v10_and_v12_give_identical_rows() {
    let t = tempfile::tempdir().unwrap();
    let images = t.path().join("vg");
    write_jpeg(&images.join("VG_100K_2/1.jpg"), "vg1", 80, 60);
    write_jpeg(&images.join("VG_100K/2.jpg"), "vg2", 60, 80);
    let url = |p: &str| format!("https://cs.stanford.edu/people/rak248/{p}");
    let image_data = write_json(
        &t.path().join("image_data.json"),
        &json!([
            {"width": 80, "url": url("VG_100K_2/1.jpg"), "height": 60, "image_id": 1, "coco_id": null, "flickr_id": null},
            {"width": 60, "url": url("VG_100K/2.jpg"), "height": 80, "image_id": 2, "coco_id": 9, "flickr_id": null},
            {"width": 60, "url": url("VG_100K/3.jpg"), "height": 80, "image_id": 3, "coco_id": null, "flickr_id": null}
        ]),
    );
    let region = |v12: bool, rid: u64, img: u64, phrase: &str| {
        if v12 {
            json!({"region_id": rid, "width": 10, "height": 10, "image_id": img, "phrase": phrase, "y": 1, "x": 2})
        } else {
            json!({"image": img, "height": 10, "width": 10, "x": 2, "y": 1, "phrase": phrase, "id": rid})
        }
    };
    let regions = |v12: bool| {
        json!([
            {"id": 1, "regions": [region(v12, 11, 1, "the clock is green in colour"), region(v12, 12, 1, "  "), region(v12, 13, 1, "man's \"hat\"")]},
            {"id": 2, "regions": [region(v12, 21, 2, "a tree")]},
            {"id": 3, "regions": [region(v12, 31, 3, "a missing image")]}
        ])
    };
    let mut outs = Vec::new();
    for (v12, name) in [
        (true, "region_descriptions_v12.json"),
        (false, "region_descriptions_v10.json"),
    ] {
        let file = write_json(&t.path().join(name), &regions(v12));
        let out = t.path().join(format!("out_{v12}"));
        ok(
            ingest("vg", &[file.clone(), image_data.clone()], &images, &out)
                .output()
                .unwrap(),
        );
        assert_eq!(check("vg", &out, &[file]), 2);
        let m = manifest(&out);
        assert_eq!(m["totals"]["images_written"], 2);
        assert_eq!(m["totals"]["captions_written"], 3);
        assert_eq!(rejects_with(&m, "annotation", "caption"), ["1#12"]);
        assert_eq!(rejects_with(&m, "path", "image"), ["3"]);
        outs.push(out);
    }
    assert_eq!(
        shard_hashes(&outs[0]),
        shard_hashes(&outs[1]),
        "v1.0 and v1.2 rows differ"
    );
}

#[test]
fn vg_real_first_records_parse_in_both_versions() {
    let samples = repo().join("../shared/samples/visual_genome");
    if !samples.exists() {
        eprintln!("skipping: ../shared/samples not present");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let images = t.path().join("vg");
    let data: serde_json::Value =
        serde_json::from_slice(&std::fs::read(samples.join("image_data_first5.json")).unwrap())
            .unwrap();
    for rec in data.as_array().unwrap() {
        let url = rec["url"].as_str().unwrap();
        let rel: Vec<&str> = url.rsplitn(3, '/').take(2).collect();
        write_jpeg(&images.join(rel[1]).join(rel[0]), url, 40, 30);
    }
    for v in ["v1.2", "v1.0"] {
        let regions = samples.join(format!("region_descriptions_{v}_first5images.json"));
        let out = t.path().join(v);
        let files = [regions.clone(), samples.join("image_data_first5.json")];
        ok(ingest("vg", &files, &images, &out).output().unwrap());
        // The two releases' phrases differ slightly; each must match its own file.
        assert_eq!(check("vg", &out, &[regions]), 5, "{v}");
    }
    // QA of the same five images, through `ingest vg` (answer weight 0.5).
    let qa = samples.join("question_answers_v1.2_first5images.json");
    let out = t.path().join("qa");
    let files = [qa.clone(), samples.join("image_data_first5.json")];
    ok(ingest("vg", &files, &images, &out).output().unwrap());
    let m = manifest(&out);
    assert_eq!(m["schema"], "image_qa.v1");
    let n_qas: usize = serde_json::from_slice::<serde_json::Value>(&std::fs::read(&qa).unwrap())
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["qas"].as_array().unwrap().len())
        .sum();
    assert_eq!(m["totals"]["questions_written"], n_qas);
    assert_eq!(check("vqa", &out, &[qa]), n_qas);
}

#[test]
fn vqa_official_albef_and_vg_qa_rows_carry_the_reference_weights() {
    let t = tempfile::tempdir().unwrap();
    let coco = t.path().join("coco");
    let vg = t.path().join("vg");
    write_jpeg(
        &coco.join("train2014/COCO_train2014_000000458752.jpg"),
        "a",
        64,
        48,
    );
    write_jpeg(
        &coco.join("train2014/COCO_train2014_000000262146.jpg"),
        "b",
        48,
        64,
    );
    write_jpeg(
        &coco.join("test2015/COCO_test2015_000000000001.jpg"),
        "c",
        64,
        64,
    );
    write_jpeg(&vg.join("VG_100K/7.jpg"), "d", 50, 40);
    write_jpeg(&vg.join("VG_100K/8.jpg"), "e", 40, 50);
    let ten = |v: &[&str]| -> Vec<serde_json::Value> {
        v.iter()
            .enumerate()
            .map(|(i, a)| json!({"answer": a, "answer_confidence": "yes", "answer_id": i + 1}))
            .collect()
    };
    let questions = write_json(
        &t.path()
            .join("v2_OpenEnded_mscoco_train2014_questions.json"),
        &json!({"info": {}, "task_type": "Open-Ended", "data_type": "mscoco", "license": {}, "data_subtype": "train2014",
        "questions": [
          {"image_id": 458752, "question": "What is this photo taken looking through?", "question_id": 458752000},
          {"image_id": 458752, "question": "What position is this man playing?", "question_id": 458752001},
          {"image_id": 262146, "question": "Is the dog waiting?", "question_id": 262146000},
          {"image_id": 262146, "question": "Unannotated?", "question_id": 262146001},
          {"image_id": 999, "question": "Where is the image?", "question_id": 999000}
        ]}),
    );
    let annotations = write_json(
        &t.path().join("v2_mscoco_train2014_annotations.json"),
        &json!({"info": {}, "license": {}, "data_subtype": "train2014", "data_type": "mscoco", "annotations": [
            {"question_type": "what is this", "multiple_choice_answer": "net", "answers": ten(&["net","net","netting","net","net","net","mesh","net","net","netting"]), "image_id": 458752, "answer_type": "other", "question_id": 458752000},
            {"question_type": "what", "multiple_choice_answer": "pitcher", "answers": ten(&["pitcher","catcher","pitcher","pitcher","pitcher","pitcher","pitcher","pitcher","pitcher","pitcher"]), "image_id": 458752, "answer_type": "other", "question_id": 458752001},
            {"question_type": "is the", "multiple_choice_answer": "yes", "answers": ten(&["yes","yes","yes","no","yes","yes","yes","yes","no","yes"]), "image_id": 262146, "answer_type": "yes/no", "question_id": 262146000},
            {"question_type": "where is the", "multiple_choice_answer": "here", "answers": ten(&["here";10]), "image_id": 999, "answer_type": "other", "question_id": 999000}
        ]}),
    );
    let test_dev = write_json(
        &t.path()
            .join("v2_OpenEnded_mscoco_test-dev2015_questions.json"),
        &json!({"data_subtype": "test-dev2015", "questions": [
            {"image_id": 1, "question": "Is it raining?", "question_id": 1000}
        ]}),
    );
    let albef = write_json(
        &t.path().join("vqa_train.json"),
        &json!([
            {"question_id": 458752002, "question": "How many people?", "answer": ["2","two","2"], "image": "train2014/COCO_train2014_000000458752.jpg", "dataset": "vqa"},
            {"question_id": 5001, "question": "What color is the sky?", "answer": "blue", "image": "VG_100K/7.jpg", "dataset": "vg"},
            {"question_id": 5002, "question": "Bad dataset", "answer": "x", "image": "x.jpg", "dataset": "gqa"}
        ]),
    );
    let vg_qa = write_json(
        &t.path().join("question_answers.json"),
        &json!([{"id": 8, "qas": [{"a_objects": [], "question": "What is green?", "image_id": 8, "qa_id": 986768, "answer": "The clock.", "q_objects": []}]}]),
    );
    let files = [questions, annotations, test_dev, albef, vg_qa];
    let out = t.path().join("vqa");
    ok(ingest("vqa", &files, &coco, &out)
        .arg("--vg-images")
        .arg(&vg)
        .output()
        .unwrap());
    let m = manifest(&out);
    // Written: 458752 (3 q), 262146 (1 q), test image (1 q, no answers), VG 7 (1 q), VG 8 (1 q).
    assert_eq!(m["totals"]["images_written"], 5, "{}", m["rejects"]);
    assert_eq!(m["totals"]["questions_written"], 7);
    assert_eq!(
        rejects_with(&m, "annotation", "question"),
        ["262146001", "5002"]
    );
    assert_eq!(rejects_with(&m, "path", "image"), ["999"]);
    // 6 answered questions checked against the reference loop (the test-dev one has none).
    assert_eq!(check("vqa", &out, &files), 6);
    manifest_is_valid_and_verifies(&out);
    let splits = Command::new(python())
        .arg("-c")
        .arg(
            "import sys,glob,pyarrow.parquet as pq\n\
             t=pq.read_table(sorted(glob.glob(sys.argv[1]+'/shards/*.parquet')))\n\
             print(sorted(set(zip(t['split'].to_pylist(), t['dataset'].to_pylist()))))",
        )
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(
        ok(splits).trim(),
        "[('test-dev', 'vqa'), ('train', 'vg'), ('train', 'vqa')]"
    );
}

#[test]
fn flickr_token_file_groups_five_lines_per_image() {
    let t = tempfile::tempdir().unwrap();
    let images = t.path().join("flickr30k-images");
    write_jpeg(&images.join("1000092795.jpg"), "f1", 64, 48);
    write_jpeg(&images.join("10002456.jpg"), "f2", 48, 64);
    let token = t.path().join("results_20130124.token");
    let mut lines: Vec<String> = (0..5)
        .map(|i| {
            format!("1000092795.jpg#{i}\tTwo young guys with shaggy hair look at their hands {i} .")
        })
        .collect();
    lines.push(
        "10002456.jpg#0\tSeveral men in hard hats are operating a giant pulley system .".into(),
    );
    lines.push("10002456.jpg#1 no tab here".into());
    lines.push("99999.jpg#0\tAn image that is not on disk .".into());
    std::fs::write(&token, lines.join("\n") + "\n").unwrap();
    let out = t.path().join("flickr");
    ok(
        ingest("flickr30k", std::slice::from_ref(&token), &images, &out)
            .output()
            .unwrap(),
    );
    let m = manifest(&out);
    assert_eq!(m["totals"]["images_written"], 2);
    assert_eq!(m["totals"]["captions_written"], 6);
    assert_eq!(rejects_with(&m, "annotation", "image"), ["line 7"]);
    assert_eq!(rejects_with(&m, "path", "image"), ["99999"]);
    // The checker groups the same file (its line 7 has no tab: it is skipped there too).
    let good = t.path().join("good.token");
    let text = std::fs::read_to_string(&token).unwrap();
    let kept: Vec<&str> = text.lines().filter(|l| l.contains('\t')).collect();
    std::fs::write(&good, kept.join("\n")).unwrap();
    assert_eq!(check("flickr", &out, &[good]), 2);
}

/// The manifest passes `schemas/manifest.v1.schema.json` (jsonschema), `mplug verify` passes, and
/// `mplug sql` counts as many rows as the manifest says were written.
fn manifest_is_valid_and_verifies(dir: &Path) {
    py(
        "import json, sys, jsonschema\n\
         jsonschema.validate(json.load(open(sys.argv[1] + '/manifest.json')), json.load(open(sys.argv[2])))",
        &[dir, &repo().join("schemas/manifest.v1.schema.json")],
    );
    ok(mplug().arg("verify").arg(dir).output().unwrap());
    let m = manifest(dir);
    let name = m["name"].as_str().unwrap().replace('-', "_");
    let sql = format!("SELECT count(*) AS n FROM {name}");
    let out = mplug()
        .args(["sql", "--format", "csv", "--data"])
        .arg(dir)
        .arg(&sql)
        .output()
        .unwrap();
    let text = ok(out);
    let expected = m["totals"]["images_written"].to_string();
    assert_eq!(text.lines().nth(1), Some(expected.as_str()), "{text}");
}

/// Runs `code` in the test venv's Python with `args`.
fn py(code: &str, args: &[&Path]) -> String {
    let out = Command::new(python())
        .arg("-c")
        .arg(code)
        .args(args)
        .output()
        .unwrap();
    ok(out)
}

#[test]
fn refcoco_pickles_protocols_0_and_2_and_transvg_pth_are_read_safely() {
    let t = tempfile::tempdir().unwrap();
    let images = t.path().join("train2014");
    write_jpeg(
        &images.join("COCO_train2014_000000000009.jpg"),
        "r9",
        64,
        48,
    );
    write_jpeg(
        &images.join("COCO_train2014_000000000025.jpg"),
        "r25",
        48,
        64,
    );
    let folder = t.path().join("refcoco+");
    std::fs::create_dir_all(&folder).unwrap();
    let instances = write_json(
        &folder.join("instances.json"),
        &json!({"images": [], "categories": [], "annotations": [
            {"id": 101, "image_id": 9, "category_id": 1, "bbox": [10.5, 20.0, 30.25, 15.0], "area": 1.0, "iscrowd": 0, "segmentation": []},
            {"id": 102, "image_id": 9, "category_id": 3, "bbox": [1, 2, 3, 4], "area": 1.0, "iscrowd": 0, "segmentation": []},
            {"id": 201, "image_id": 25, "category_id": 1, "bbox": [5, 5, 20, 30], "area": 1.0, "iscrowd": 0, "segmentation": []}
        ]}),
    );
    // refer's format, written by Python's pickle (protocol 0 as Python 2's default, and 2).
    let make_refs = r#"
import pickle, sys
refs = [
  {"ref_id": 1, "ann_id": 101, "image_id": 9, "category_id": 1, "split": "train", "file_name": "COCO_train2014_000000000009_101.jpg",
   "sent_ids": [11, 12], "sentences": [{"sent_id": 11, "sent": "man on left", "raw": "Man on left", "tokens": ["man", "on", "left"]},
                                         {"sent_id": 12, "sent": "guy in red", "raw": "guy in red!", "tokens": ["guy", "in", "red"]}]},
  {"ref_id": 2, "ann_id": 102, "image_id": 9, "category_id": 3, "split": "train", "file_name": "x", "sent_ids": [13],
   "sentences": [{"sent_id": 13, "sent": "the car", "raw": "The car", "tokens": ["the", "car"]}]},
  {"ref_id": 3, "ann_id": 201, "image_id": 25, "category_id": 1, "split": "testA", "file_name": "y", "sent_ids": [14],
   "sentences": [{"sent_id": 14, "sent": "woman", "raw": "Woman", "tokens": ["woman"]}]},
  {"ref_id": 4, "ann_id": 999, "image_id": 25, "category_id": 1, "split": "testA", "file_name": "z", "sent_ids": [15],
   "sentences": [{"sent_id": 15, "sent": "ghost", "raw": "Ghost", "tokens": ["ghost"]}]},
]
pickle.dump(refs, open(sys.argv[1], "wb"), protocol=int(sys.argv[2]))
"#;
    for protocol in ["0", "2"] {
        let refs = folder.join("refs(unc).p");
        let out_py = Command::new(python())
            .arg("-c")
            .arg(make_refs)
            .arg(&refs)
            .arg(protocol)
            .output()
            .unwrap();
        ok(out_py);
        let out = t.path().join(format!("refcoco_p{protocol}"));
        let files = [refs.clone(), instances.clone()];
        ok(ingest("refcoco", &files, &images, &out).output().unwrap());
        let m = manifest(&out);
        assert_eq!(m["totals"]["images_written"], 2, "{}", m["rejects"]);
        assert_eq!(m["totals"]["captions_written"], 4);
        assert_eq!(rejects_with(&m, "annotation", "ref"), ["4"]);
        assert_eq!(check("refcoco", &out, &[refs, instances.clone()]), 2);
        manifest_is_valid_and_verifies(&out);
        let meta = py(
            "import sys,glob,pyarrow.parquet as pq\n\
             t=pq.read_table(sorted(glob.glob(sys.argv[1]+'/shards/*.parquet')))\n\
             print(sorted(set(zip(t['dataset'].to_pylist(), t['split_by'].to_pylist(), t['split'].to_pylist()))))",
            &[&out],
        );
        assert_eq!(
            meta.trim(),
            "[('refcoco+', 'unc', 'testA'), ('refcoco+', 'unc', 'train')]"
        );
    }

    // TransVG/mPLUG split file, written by torch.save.
    let pth = t.path().join("refcoco_train.pth");
    ok(Command::new(python())
        .arg("-c")
        .arg(
            "import torch, sys\n\
             torch.save([('COCO_train2014_000000000009.jpg', 'COCO_train2014_000000000009_101.pth', [10.5, 20.0, 30.25, 15.0], 'man on left', []),\n\
                         ('COCO_train2014_000000000025.jpg', 'x.pth', [5, 5, 20, 30], 'woman', [])], sys.argv[1])",
        )
        .arg(&pth)
        .output()
        .unwrap());
    let out = t.path().join("refcoco_pth");
    ok(ingest("refcoco", std::slice::from_ref(&pth), &images, &out)
        .output()
        .unwrap());
    let rows = py(
        "import sys,glob,pyarrow.parquet as pq\n\
         t=pq.read_table(sorted(glob.glob(sys.argv[1]+'/shards/*.parquet')))\n\
         [print(r['image_id'], r['boxes'], r['sentences']) for r in t.to_pylist()]",
        &[&out],
    );
    assert_eq!(
        rows.trim(),
        "9 [[10.5, 20.0, 30.25, 15.0]] ['man on left']\n25 [[5.0, 5.0, 20.0, 30.0]] ['woman']"
    );

    // A pickle whose loading would run a shell command is read as data: nothing runs, the
    // file is reported as not being refs.
    let evil = folder.join("refs(google).p");
    let marker = t.path().join("pwned");
    ok(Command::new(python())
        .arg("-c")
        .arg(
            "import pickle, os, sys\n\
             class E:\n    def __reduce__(self): return (os.system, ('touch ' + sys.argv[2],))\n\
             pickle.dump(E(), open(sys.argv[1], 'wb'), protocol=2)",
        )
        .arg(&evil)
        .arg(&marker)
        .output()
        .unwrap());
    let bad = ingest(
        "refcoco",
        &[evil, instances],
        &images,
        &t.path().join("evil"),
    )
    .output()
    .unwrap();
    assert_eq!(
        bad.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    assert!(String::from_utf8_lossy(&bad.stderr).contains("expected a list of refs"));
    assert!(!marker.exists(), "the pickle's command ran");
}

fn nlvr2_pair_images(images: &Path, jsonl: &Path) {
    for line in std::fs::read_to_string(jsonl).unwrap().lines() {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = r["identifier"].as_str().unwrap();
        let pair = id.rsplit_once('-').unwrap().0;
        let split = id.split('-').next().unwrap();
        for k in 0..2 {
            let p = images.join(split).join(format!("{pair}-img{k}.png"));
            if !p.exists() {
                write_jpeg(&p, &format!("{pair}{k}"), 40, 30);
            }
        }
    }
}

#[test]
fn nlvr2_pairs_and_snli_ve_hypotheses_become_statement_rows() {
    let t = tempfile::tempdir().unwrap();
    let images = t.path().join("nlvr2");
    // Own fixture in the release format (plus the real first records when present).
    let dev = t.path().join("dev.json");
    let rec = |id: &str, sentence: &str, label: &str| {
        json!({"validation": {"1": label}, "sentence": sentence, "left_url": "x", "writer": "1", "label": label,
               "right_url": "y", "synset": "dog", "query": "dogs1", "identifier": id, "extra_validations": {}})
        .to_string()
    };
    let lines = [
        rec("dev-1-0-0", "The left image shows two dogs.", "True"),
        rec("dev-1-0-1", "There are exactly three dogs.", "False"),
        rec("dev-2-3-0", "A bird is in the right image.", "True"),
        rec("dev-9-9-0", "A broken label.", "maybe"),
    ];
    std::fs::write(&dev, lines.join("\n")).unwrap();
    nlvr2_pair_images(&images, &dev);
    let out = t.path().join("nlvr2");
    ok(ingest("nlvr2", std::slice::from_ref(&dev), &images, &out)
        .output()
        .unwrap());
    let m = manifest(&out);
    assert_eq!(m["totals"]["images_written"], 2);
    assert_eq!(rejects_with(&m, "annotation", "statement"), ["dev-9-9-0"]);
    let good = t.path().join("dev_good.json");
    std::fs::write(&good, lines[..3].join("\n")).unwrap();
    assert_eq!(check("nlvr2", &out, &[good]), 2);

    let real = repo().join("../shared/samples/nlvr2/dev_first40.jsonl");
    if real.exists() {
        let images = t.path().join("nlvr2_real");
        nlvr2_pair_images(&images, &real);
        let out = t.path().join("nlvr2_real_out");
        ok(ingest("nlvr2", std::slice::from_ref(&real), &images, &out)
            .output()
            .unwrap());
        let pairs = check("nlvr2", &out, &[real]);
        assert!(pairs >= 10, "{pairs} pairs from 40 real lines");
    }

    // SNLI-VE jsonl: hypotheses grouped per Flickr30K image; gold_label "-" is rejected.
    let images = t.path().join("flickr");
    write_jpeg(&images.join("3416050480.jpg"), "s1", 64, 48);
    let snli = t.path().join("snli_ve_dev.jsonl");
    let hyp = |pair: &str, label: &str, h: &str| {
        json!({"Flickr30K_ID": "3416050480", "gold_label": label, "sentence1": "A man in a red shirt.", "sentence2": h,
               "pairID": pair, "captionID": "3416050480.jpg#4", "annotator_labels": [label]})
        .to_string()
    };
    let text = [
        hyp("3416050480.jpg#4r1n", "neutral", "The man is tall."),
        hyp("3416050480.jpg#4r1e", "entailment", "A man wears red."),
        hyp("3416050480.jpg#4r1c", "contradiction", "A woman sleeps."),
        hyp("3416050480.jpg#4r2x", "-", "No consensus."),
    ]
    .join("\n");
    std::fs::write(&snli, text).unwrap();
    let out = t.path().join("snli");
    ok(
        ingest("snli-ve", std::slice::from_ref(&snli), &images, &out)
            .output()
            .unwrap(),
    );
    assert_eq!(
        rejects_with(&manifest(&out), "annotation", "statement"),
        ["3416050480.jpg#4r2x"]
    );
    let rows = py(
        "import sys,glob,pyarrow.parquet as pq\n\
         t=pq.read_table(sorted(glob.glob(sys.argv[1]+'/shards/*.parquet')))\n\
         [print(r['sample_id'], r['split'], r['num_images'], r['right_image'], r['labels'], r['premises'][0]) for r in t.to_pylist()]",
        &[&out],
    );
    assert_eq!(
        rows.trim(),
        "3416050480 dev 1 None [1, 2, 0] A man in a red shirt."
    );
    manifest_is_valid_and_verifies(&out);
}

#[test]
fn leakage_finds_planted_reencoded_copies_and_writes_the_exclusion_list() {
    let t = tempfile::tempdir().unwrap();
    let raw = t.path().join("raw");
    // COCO-style test split: five distinct images.
    let coco_imgs = raw.join("coco");
    let mut test_records = Vec::new();
    for i in 0..5 {
        let rel = format!("val2014/COCO_val2014_{i:012}.jpg");
        write_jpeg(&coco_imgs.join(&rel), &format!("coco{i}"), 160, 120);
        test_records.push(json!({"image": rel, "caption": [format!("a test picture number {i}")]}));
    }
    let coco_test = write_json(&raw.join("coco_karpathy_test.json"), &json!(test_records));
    // VG training images: two copies of COCO test images 1 and 3, re-encoded by Pillow at another
    // quality and size, and three unrelated images.
    let vg_imgs = raw.join("vg");
    for (id, token) in [(11, "vg11"), (12, "vg12"), (13, "vg13")] {
        write_jpeg(&vg_imgs.join(format!("VG_100K/{id}.jpg")), token, 150, 110);
    }
    for (id, coco) in [(21, 1), (22, 3)] {
        let src = coco_imgs.join(format!("val2014/COCO_val2014_{coco:012}.jpg"));
        let dst = vg_imgs.join(format!("VG_100K/{id}.jpg"));
        py(
            "import sys\nfrom PIL import Image\n\
             Image.open(sys.argv[1]).resize((128, 96), Image.BICUBIC).save(sys.argv[2], quality=70)",
            &[&src, &dst],
        );
    }
    let regions: Vec<serde_json::Value> = [11, 12, 13, 21, 22]
        .iter()
        .map(|id| json!({"id": id, "regions": [{"region_id": id * 10, "image_id": id, "phrase": "something", "x": 0, "y": 0, "width": 5, "height": 5}]}))
        .collect();
    let vg_regions = write_json(&raw.join("region_descriptions.json"), &json!(regions));
    let data = t.path().join("data");
    ok(ingest("coco", &[coco_test], &coco_imgs, &data.join("coco"))
        .output()
        .unwrap());
    ok(ingest("vg", &[vg_regions], &vg_imgs, &data.join("vg"))
        .output()
        .unwrap());

    let exclusions = t.path().join("exclusions.json");
    let report = mplug()
        .args(["leakage", "--data"])
        .arg(&data)
        .arg("--exclusions")
        .arg(&exclusions)
        .output()
        .unwrap();
    let text = ok(report);
    assert!(text.contains("coco/test"), "{text}");
    assert!(text.contains("vg/train"), "{text}");
    let list: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&exclusions).unwrap()).unwrap();
    assert_eq!(list["format"], "mplug.exclusions");
    let got: Vec<(String, String)> = list["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["id"].as_str().unwrap().to_string(),
                e["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "21".to_string(),
                "coco/test:val2014/COCO_val2014_000000000001.jpg".to_string()
            ),
            (
                "22".to_string(),
                "coco/test:val2014/COCO_val2014_000000000003.jpg".to_string()
            ),
        ]
    );
    // With distance 0 nothing but exact dHash equality counts; the JSON lines name both sides.
    let strict = mplug()
        .args(["leakage", "--json", "--max-distance", "0", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    for line in ok(strict).lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["distance"], 0);
        assert_eq!(v["eval"]["dataset"], "coco");
    }
}

#[test]
fn every_reader_names_the_file_and_position_of_malformed_input_and_rejects_bad_images() {
    let t = tempfile::tempdir().unwrap();
    let images = t.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    let cases = [
        (
            "vg",
            "region_descriptions.json",
            "[{\"id\": 1, \"regions\": [\n{\"x\": }",
        ),
        (
            "vqa",
            "vqa_train.json",
            "[{\"question\": \"q\",\n \"answer\": [1,]}]",
        ),
        ("flickr30k", "dataset_flickr30k.json", "{\"images\": [\n}"),
        ("refcoco", "instances.json", "{\"annotations\": \n[}"),
        (
            "nlvr2",
            "dev.json",
            "{\"identifier\": \"dev-1-0-0\"}\n{\"sentence\": \n",
        ),
        (
            "snli-ve",
            "snli_ve_dev.jsonl",
            "{\"gold_label\": \"neutral\"}\n{oops}\n",
        ),
        (
            "sbu",
            "sbu-captions-all.json",
            "{\"image_urls\": [\"http://a\"],\n \"captions\": [}",
        ),
    ];
    for (dataset, name, text) in cases {
        let file = t.path().join(name);
        std::fs::write(&file, text).unwrap();
        let out = ingest(
            dataset,
            std::slice::from_ref(&file),
            &images,
            &t.path().join(dataset),
        )
        .output()
        .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{dataset}: {err}");
        assert!(
            err.contains(name) && err.contains("line 2"),
            "{dataset}: {err}"
        );
        assert!(!t.path().join(dataset).join("manifest.json").exists());
    }

    // A truncated JPEG and a non-image under a task schema are rejects with reasons, not crashes.
    let coco = t.path().join("coco");
    write_jpeg(
        &coco.join("train2014/COCO_train2014_000000000001.jpg"),
        "ok",
        64,
        48,
    );
    let full = crate::common::pattern_jpeg("cut", 64, 48);
    std::fs::write(
        coco.join("train2014/COCO_train2014_000000000002.jpg"),
        &full[..full.len() / 3],
    )
    .unwrap();
    std::fs::write(
        coco.join("train2014/COCO_train2014_000000000003.jpg"),
        b"<html>",
    )
    .unwrap();
    let recs: Vec<serde_json::Value> = (1..=3)
        .map(|i| {
            json!({"question_id": i, "question": "what?", "answer": ["x"], "dataset": "vqa",
                        "image": format!("train2014/COCO_train2014_{i:012}.jpg")})
        })
        .collect();
    let list = write_json(&t.path().join("vqa_train.json"), &json!(recs));
    let out = t.path().join("vqa_bad_images");
    ok(ingest("vqa", &[list], &coco, &out).output().unwrap());
    let m = manifest(&out);
    assert_eq!(m["totals"]["images_written"], 1);
    let reasons: Vec<String> = m["rejects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| format!("{} {}", r["stage"], r["reason"]))
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons[0].contains("decode") && reasons[0].contains("corrupt or truncated JPEG"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].contains("decode") && reasons[1].contains("not an image"),
        "{reasons:?}"
    );
}
