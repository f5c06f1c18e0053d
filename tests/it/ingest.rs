//! End-to-end tests of `mplug synth`, `mplug ingest coco` and `mplug verify`, driving the real binary.
//!
//! Oracles are independent of the code under test: the raw annotation files, pyarrow, DuckDB, Pillow,
//! Hugging Face `tokenizers` and `jsonschema` (tests/py/check_dataset.py, run with the project venv's
//! Python that scripts/setup.sh installs), and hand-built bad inputs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::{mplug, ok, python, repo, vocab};

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("spawn mplug")
}

fn run_ok(cmd: &mut Command) -> String {
    ok(run(cmd))
}

fn synth(dir: &Path, images: usize, seed: u64) {
    run_ok(
        mplug()
            .args([
                "synth",
                "--images",
                &images.to_string(),
                "--seed",
                &seed.to_string(),
                "--out",
            ])
            .arg(dir),
    );
}

fn albef_files(raw: &Path) -> Vec<PathBuf> {
    ["train", "val", "test"]
        .iter()
        .map(|s| raw.join(format!("annotations/coco_karpathy_{s}.json")))
        .collect()
}

fn ingest_cmd(annotations: &[PathBuf], images: &Path, out: &Path) -> Command {
    let mut c = mplug();
    c.args(["ingest", "coco", "--quiet", "--annotations"])
        .args(annotations);
    // a fixed name: the default (the directory name) would differ between the outputs compared
    c.arg("--images")
        .arg(images)
        .arg("--out")
        .arg(out)
        .arg("--vocab")
        .arg(vocab())
        .args(["--name", "coco"]);
    c
}

/// Every file under `dir`, relative path → blake3.
fn tree_hashes(dir: &Path) -> Vec<(String, String)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
                out.push((
                    rel,
                    blake3::hash(&std::fs::read(&p).unwrap())
                        .to_hex()
                        .to_string(),
                ));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

fn check_py(args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new(python())
        .arg(repo().join("tests/py/check_dataset.py"))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "python check failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn synth_is_deterministic_per_seed() {
    let t = tempfile::tempdir().unwrap();
    synth(&t.path().join("a"), 20, 5);
    synth(&t.path().join("b"), 20, 5);
    synth(&t.path().join("c"), 20, 6);
    let a = tree_hashes(&t.path().join("a"));
    assert_eq!(a, tree_hashes(&t.path().join("b")));
    assert_ne!(a, tree_hashes(&t.path().join("c")));
    // every file variant is present: 6 caption annotation files + 20 images, with .png and .jpg;
    // the task formats name the same images again: VQA v2 (4 files + 20 links), SNLI-VE (3 + 20),
    // NLVR2 (3 files + the pairs of this seed's splits: 14 train and 5 val images → 7 + 2 pairs,
    // 1 test image → none: 18 links), RefCOCO (refs pickle + instances.json + 20 links)
    assert_eq!(a.len(), 6 + 20 + (4 + 20) + (3 + 20) + (3 + 18) + (2 + 20));
    assert!(a.iter().any(|(p, _)| p.ends_with(".png")));
}

/// Byte-identical shards and manifest for 1 and 2 threads, with sizes small enough to produce several
/// shards and row groups; pyarrow, DuckDB, HF tokenizers and jsonschema agree with the output.
#[test]
fn ingest_is_identical_across_threads_and_readable_by_pyarrow_and_duckdb() {
    let t = tempfile::tempdir().unwrap();
    let raw = t.path().join("raw");
    synth(&raw, 60, 1);
    let files = albef_files(&raw);
    let mut outs = Vec::new();
    for threads in ["1", "2"] {
        let out = t.path().join(format!("coco_t{threads}"));
        run_ok(ingest_cmd(&files, &raw.join("images"), &out).args([
            "--threads",
            threads,
            "--shard-size",
            "600KiB",
            "--row-group-size",
            "100KiB",
        ]));
        outs.push(out);
    }
    let (a, b) = (tree_hashes(&outs[0]), tree_hashes(&outs[1]));
    assert_eq!(a, b, "threads 1 vs 2 differ");
    let m = manifest(&outs[0]);
    assert!(
        m["shards"].as_array().unwrap().len() >= 3,
        "expected several shards: {}",
        m["shards"]
    );
    assert!(m["shards"][0]["row_groups"].as_u64().unwrap() >= 2);
    assert_eq!(m["totals"]["images_written"], 60);
    assert_eq!(m["totals"]["captions_written"], 300);

    let mut args: Vec<&std::ffi::OsStr> = vec!["readers".as_ref(), outs[0].as_os_str()];
    let v = vocab();
    args.push(v.as_os_str());
    args.extend(files.iter().map(|f| f.as_os_str()));
    check_py(&args);
}

/// The three COCO layouts of the same data give the same images and captions.
#[test]
fn official_karpathy_and_albef_layouts_agree() {
    let t = tempfile::tempdir().unwrap();
    let raw = t.path().join("raw");
    synth(&raw, 30, 2);
    let images = raw.join("images");
    let ann = raw.join("annotations");
    let layouts = [
        vec![
            ann.join("captions_train2017.json"),
            ann.join("captions_val2017.json"),
        ],
        vec![ann.join("dataset_coco.json")],
        albef_files(&raw),
    ];
    let mut counts = Vec::new();
    for (i, files) in layouts.iter().enumerate() {
        let out = t.path().join(format!("l{i}"));
        run_ok(&mut ingest_cmd(files, &images, &out));
        let m = manifest(&out);
        counts.push((
            m["totals"]["images_written"].clone(),
            m["totals"]["captions_written"].clone(),
        ));
        // each layout checked against its own raw files by the independent reader
        let v = vocab();
        let mut args: Vec<&std::ffi::OsStr> =
            vec!["readers".as_ref(), out.as_os_str(), v.as_os_str()];
        args.extend(files.iter().map(|f| f.as_os_str()));
        check_py(&args);
    }
    assert!(counts.iter().all(|c| *c == counts[0]), "{counts:?}");
    assert_eq!(counts[0].0, 30);
}

/// Decoding equals Pillow's `exif_transpose(open(p)).convert("RGB")` exactly for every file variant
/// (baseline, progressive, grayscale, CMYK, EXIF-rotated JPEG; RGB and RGBA PNG), and the bicubic
/// downscale stays within a few levels of Pillow's (more than 1 level on < 1e-4 of values).
#[test]
fn pixels_match_pillow() {
    let t = tempfile::tempdir().unwrap();
    let raw = t.path().join("raw");
    synth(&raw, 40, 3);
    let files = albef_files(&raw);
    let full = t.path().join("full");
    run_ok(ingest_cmd(&files, &raw.join("images"), &full).args([
        "--codec",
        "raw",
        "--max-side",
        "0",
    ]));
    let report = check_py(&[
        "pixels".as_ref(),
        full.as_os_str(),
        raw.join("images").as_os_str(),
        "0".as_ref(),
        "0".as_ref(),
    ]);
    for kind in [
        "JPEG/CMYK",
        "JPEG/L",
        "JPEG/RGB",
        "JPEG/RGB/exif",
        "PNG/RGB",
        "PNG/RGBA",
    ] {
        assert!(
            report.contains(kind),
            "variant {kind} not exercised: {report}"
        );
    }
    let small = t.path().join("small");
    run_ok(ingest_cmd(&files, &raw.join("images"), &small).args([
        "--codec",
        "raw",
        "--max-side",
        "200",
    ]));
    check_py(&[
        "pixels".as_ref(),
        small.as_os_str(),
        raw.join("images").as_os_str(),
        "4".as_ref(),
        "1e-4".as_ref(),
    ]);
}

#[test]
fn verify_passes_then_names_the_shard_with_a_flipped_byte() {
    let t = tempfile::tempdir().unwrap();
    let raw = t.path().join("raw");
    synth(&raw, 20, 4);
    let out = t.path().join("coco");
    run_ok(
        ingest_cmd(&albef_files(&raw), &raw.join("images"), &out).args(["--shard-size", "40KiB"]),
    );
    let ok = run_ok(mplug().arg("verify").arg(&out));
    assert!(ok.starts_with("ok:"), "{ok}");

    let m = manifest(&out);
    let shard = m["shards"][1]["path"].as_str().unwrap().to_string();
    let path = out.join(&shard);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
    let res = run(mplug().arg("verify").arg(&out));
    assert_eq!(res.status.code(), Some(1));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(err.contains(&shard) && err.contains("blake3"), "{err}");

    // an edited manifest is caught by the dataset hash
    let out2 = t.path().join("coco2");
    run_ok(&mut ingest_cmd(
        &albef_files(&raw),
        &raw.join("images"),
        &out2,
    ));
    let text = std::fs::read_to_string(out2.join("manifest.json")).unwrap();
    std::fs::write(
        out2.join("manifest.json"),
        text.replace("\"images_seen\": 20", "\"images_seen\": 21"),
    )
    .unwrap();
    let res = run(mplug().arg("verify").arg(&out2));
    assert_eq!(
        res.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert!(String::from_utf8_lossy(&res.stderr).contains("dataset_blake3"));
}

/// Hand-built bad inputs: each is rejected with its reason, the run continues, the summary counts it,
/// and `--strict` turns the first one into a failure with no manifest.
#[test]
fn bad_inputs_are_rejected_with_reasons() {
    let t = tempfile::tempdir().unwrap();
    let raw = t.path().join("raw");
    synth(&raw, 8, 9);
    let images = raw.join("images");
    let good: Vec<String> = std::fs::read_dir(images.join("train2017"))
        .unwrap()
        .chain(std::fs::read_dir(images.join("val2017")).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .map(|p| {
            p.strip_prefix(&images)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert!(good.len() >= 4);
    let bad = images.join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("empty.jpg"), b"").unwrap();
    let jpeg = std::fs::read(images.join(&good[0])).unwrap();
    std::fs::write(bad.join("truncated.jpg"), &jpeg[..jpeg.len() / 2]).unwrap();
    std::fs::write(
        bad.join("notes.jpg"),
        b"these are my holiday notes, not a picture",
    )
    .unwrap();
    std::fs::write(t.path().join("outside.jpg"), &jpeg).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(t.path().join("outside.jpg"), bad.join("link.jpg")).unwrap();
    let abs = t.path().join("outside.jpg").display().to_string();

    let records = serde_json::json!([
        {"image": good[0], "caption": "a fine picture", "image_id": "ok_0"},
        {"image": good[0], "caption": "", "image_id": "ok_0"},
        {"image": good[0], "caption": 42, "image_id": "ok_0"},
        {"image": good[1], "caption": ["first caption", null, "   "], "image_id": "ok_1"},
        {"image": good[2], "caption": "duplicate id elsewhere", "image_id": "ok_1"},
        {"image": good[3], "caption": "...", "image_id": "dots"},
        {"image": "bad/missing.jpg", "caption": "a missing file", "image_id": "missing"},
        {"image": "bad/empty.jpg", "caption": "a zero byte file", "image_id": "empty"},
        {"image": "bad/truncated.jpg", "caption": "a truncated jpeg", "image_id": "truncated"},
        {"image": "bad/notes.jpg", "caption": "a text file", "image_id": "notes"},
        {"image": "../outside.jpg", "caption": "escapes with dot dot", "image_id": "dotdot"},
        {"image": abs, "caption": "an absolute path", "image_id": "absolute"},
        {"image": "bad/link.jpg", "caption": "a symlink out of the root", "image_id": "symlink"},
    ]);
    let ann = t.path().join("coco_bad_train.json");
    std::fs::write(&ann, serde_json::to_vec(&records).unwrap()).unwrap();
    let out = t.path().join("out");
    let stdout = run_ok(&mut ingest_cmd(std::slice::from_ref(&ann), &images, &out));
    let m = manifest(&out);
    let rejects = m["rejects"].as_array().unwrap();
    let reason_of = |id: &str| -> String {
        rejects
            .iter()
            .filter(|r| r["sample_id"].as_str().unwrap().starts_with(id))
            .map(|r| r["reason"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
            .join(" | ")
    };
    let expect = [
        ("ok_0#1", "empty caption"),
        ("ok_0#2", "a number, not a string"),
        ("ok_1#3.1", "null, not a string"),
        ("ok_1#3.2", "empty caption"),
        ("ok_1", "duplicate image id"),
        ("dots", "empty after normalisation"),
        ("missing", "missing image file"),
        ("empty", "empty file"),
        ("truncated", "corrupt or truncated JPEG"),
        ("notes", "not an image"),
        ("dotdot", "escapes the image root"),
        ("absolute", "is absolute"),
        ("symlink", "outside the image root"),
    ];
    for (id, needle) in expect {
        let r = reason_of(id);
        assert!(
            r.contains(needle),
            "reject of {id}: expected {needle:?} in {r:?}\nall: {rejects:#?}"
        );
    }
    // written: ok_0 (1 caption) and ok_1 (1 caption); everything else rejected
    assert_eq!(m["totals"]["images_written"], 2, "{}", m["totals"]);
    assert_eq!(m["totals"]["captions_written"], 2);
    assert_eq!(m["totals"]["images_rejected"], 9, "{}", m["totals"]); // dup, dots, 7 file/path cases
    assert!(stdout.contains("9 rejected"), "{stdout}");

    // decompression-bomb guard: a normal image over a lowered pixel limit
    let bomb_out = t.path().join("bomb");
    run_ok(ingest_cmd(&albef_files(&raw), &images, &bomb_out).args(["--max-pixels", "40000"]));
    let m = manifest(&bomb_out);
    assert!(
        m["rejects"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["reason"].as_str().unwrap().contains("decompression bomb")),
        "{}",
        m["rejects"]
    );

    // --strict: first reject is fatal, exit 1, no manifest
    let strict_out = t.path().join("strict");
    let res = run(ingest_cmd(std::slice::from_ref(&ann), &images, &strict_out).arg("--strict"));
    assert_eq!(res.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&res.stderr).contains("--strict"));
    assert!(!strict_out.join("manifest.json").exists());
}

/// A malformed annotation file stops the run with exit code 2, naming the file and the position, and
/// leaves no complete-looking output.
#[test]
fn malformed_annotations_fail_with_file_and_position() {
    let t = tempfile::tempdir().unwrap();
    let raw = t.path().join("raw");
    synth(&raw, 4, 1);
    let ann = t.path().join("captions_val2017.json");
    std::fs::write(
        &ann,
        "{\"images\": [\n  {\"id\": 1, \"file_name\": \"x.jpg\"},\n  {\"id\": 2,, }\n]}",
    )
    .unwrap();
    let out = t.path().join("out");
    let res = run(&mut ingest_cmd(
        std::slice::from_ref(&ann),
        &raw.join("images"),
        &out,
    ));
    assert_eq!(res.status.code(), Some(2));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.contains("captions_val2017.json") && err.contains("line 3"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(!out.join("manifest.json").exists());

    // well-formed JSON of the wrong shape: the JSON path is named
    std::fs::write(&ann, "{\"images\": 5, \"annotations\": []}").unwrap();
    let res = run(&mut ingest_cmd(
        std::slice::from_ref(&ann),
        &raw.join("images"),
        &out,
    ));
    assert_eq!(res.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&res.stderr).contains("$.images"));
}

/// Rerun semantics: same inputs → "up to date"; other settings → refused without --force; --force
/// rebuilds; leftovers of an interrupted run are cleared.
#[test]
fn reruns_are_idempotent_and_guarded() {
    let t = tempfile::tempdir().unwrap();
    let raw = t.path().join("raw");
    synth(&raw, 10, 1);
    let files = albef_files(&raw);
    let out = t.path().join("coco");
    run_ok(&mut ingest_cmd(&files, &raw.join("images"), &out));
    let before = tree_hashes(&out);
    let again = run_ok(&mut ingest_cmd(&files, &raw.join("images"), &out));
    assert!(again.contains("up to date"), "{again}");
    assert_eq!(before, tree_hashes(&out));

    let res = run(ingest_cmd(&files, &raw.join("images"), &out).args(["--max-side", "128"]));
    assert_eq!(res.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&res.stderr).contains("--force"));
    assert_eq!(
        before,
        tree_hashes(&out),
        "a refused run must not touch the dataset"
    );
    run_ok(ingest_cmd(&files, &raw.join("images"), &out).args(["--max-side", "128", "--force"]));
    assert_ne!(before, tree_hashes(&out));

    // an interrupted run: no manifest, stale shard and temp file; the rerun gives the clean bytes
    let clean = t.path().join("clean");
    run_ok(&mut ingest_cmd(&files, &raw.join("images"), &clean));
    let dirty = t.path().join("dirty");
    std::fs::create_dir_all(dirty.join("shards")).unwrap();
    std::fs::write(dirty.join("shards/part-00000.parquet.tmp"), b"half a shard").unwrap();
    std::fs::write(
        dirty.join("shards/part-00003.parquet"),
        b"a shard from another run",
    )
    .unwrap();
    run_ok(&mut ingest_cmd(&files, &raw.join("images"), &dirty));
    assert_eq!(tree_hashes(&clean), tree_hashes(&dirty));
}

/// kill -9 at several moments during an ingest, then rerun: the final bytes equal a clean run's.
#[cfg(unix)]
#[test]
fn kill_9_then_rerun_gives_the_same_bytes() {
    let t = tempfile::tempdir().unwrap();
    let raw = t.path().join("raw");
    synth(&raw, 400, 8);
    let files = albef_files(&raw);
    let clean = t.path().join("clean");
    let started = std::time::Instant::now();
    run_ok(ingest_cmd(&files, &raw.join("images"), &clean).args([
        "--shard-size",
        "300KiB",
        "--threads",
        "2",
    ]));
    let full_ms = started.elapsed().as_millis() as u64;
    let expected = tree_hashes(&clean);
    let mut interrupted_with_shards = 0;
    for (i, fraction) in [0.1f64, 0.3, 0.5, 0.7, 0.9].iter().enumerate() {
        let delay_ms = (full_ms as f64 * fraction) as u64;
        let out = t.path().join(format!("killed{i}"));
        let mut child = ingest_cmd(&files, &raw.join("images"), &out)
            .args(["--shard-size", "300KiB", "--threads", "2"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        if out.join("manifest.json").exists() {
            // finished before the kill: it must already be the clean result
            assert_eq!(tree_hashes(&out), expected);
        } else if std::fs::read_dir(out.join("shards")).is_ok_and(|mut d| d.next().is_some()) {
            interrupted_with_shards += 1;
        }
        run_ok(ingest_cmd(&files, &raw.join("images"), &out).args([
            "--shard-size",
            "300KiB",
            "--threads",
            "1",
        ]));
        assert_eq!(tree_hashes(&out), expected, "after kill at {delay_ms} ms");
    }
    assert!(
        interrupted_with_shards > 0,
        "no kill landed mid-run (clean run took {full_ms} ms)"
    );
}

/// The real first records of the public COCO results file parse with the ALBEF-list reader (same
/// {image_id, caption} records) when present (extra check; CI fixtures are generated).
#[test]
fn shared_sample_coco_records_have_the_expected_fields() {
    let sample =
        repo().join("../shared/samples/coco_captions/captions_val2014_fakecap_results.json");
    let Ok(bytes) = std::fs::read(&sample) else {
        return;
    };
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let first = &v.as_array().unwrap()[0];
    assert!(first["image_id"].is_u64() && first["caption"].is_string());
    // normalisation of real captions: pre_caption output has no deleted punctuation and no double spaces
    for r in v.as_array().unwrap().iter().take(200) {
        let c = mplug::text::pre_caption(r["caption"].as_str().unwrap(), 30);
        assert!(
            !c.contains("  ") && !c.contains('.') && !c.contains(','),
            "{c:?}"
        );
    }
}

/// Record-level problems in the official and Karpathy layouts: duplicate ids in `images`, captions
/// pointing at unknown images, images without captions, a missing split field.
#[test]
fn official_and_karpathy_record_problems_are_rejected() {
    let t = tempfile::tempdir().unwrap();
    let raw = t.path().join("raw");
    synth(&raw, 8, 3);
    let images = raw.join("images");
    let names: Vec<String> = std::fs::read_dir(images.join("train2017"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.len() >= 3);
    let official = serde_json::json!({
        "images": [
            {"id": 1, "file_name": names[0]},
            {"id": 1, "file_name": names[1]},
            {"id": 2, "file_name": names[2]},
            {"id": 3},
        ],
        "annotations": [
            {"id": 10, "image_id": 1, "caption": "a caption"},
            {"id": 11, "image_id": 99, "caption": "for an image that does not exist"},
        ],
    });
    let ann = t.path().join("captions_train2017.json");
    std::fs::write(&ann, serde_json::to_vec(&official).unwrap()).unwrap();
    let out = t.path().join("official");
    run_ok(&mut ingest_cmd(std::slice::from_ref(&ann), &images, &out));
    let m = manifest(&out);
    let reasons: Vec<String> = m["rejects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["sample_id"].as_str().unwrap(),
                r["reason"].as_str().unwrap()
            )
        })
        .collect();
    let all = reasons.join("\n");
    assert!(all.contains("duplicate image id `1`"), "{all}");
    assert!(all.contains("unknown image id `99`"), "{all}");
    assert!(all.contains("2 image has no valid caption"), "{all}");
    assert!(all.contains("no string `file_name`"), "{all}");
    assert_eq!(m["totals"]["images_written"], 1);
    assert_eq!(m["totals"]["captions_rejected"], 1);

    let karpathy = serde_json::json!({"images": [
        {"filepath": "train2017", "filename": names[0], "cocoid": 5, "split": "train", "sentences": [{"raw": "fine"}]},
        {"filepath": "train2017", "filename": names[1], "cocoid": 6, "sentences": [{"raw": "no split"}]},
    ]});
    let ann = t.path().join("dataset_coco.json");
    std::fs::write(&ann, serde_json::to_vec(&karpathy).unwrap()).unwrap();
    let out = t.path().join("karpathy");
    run_ok(&mut ingest_cmd(std::slice::from_ref(&ann), &images, &out));
    let m = manifest(&out);
    assert_eq!(m["totals"]["images_written"], 1);
    assert!(
        m["rejects"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("no string `split`"),
        "{}",
        m["rejects"]
    );
}
