//! Hostile inputs as a user's broken data would be (issue 23): each case runs the real command
//! under a deadline, so a regression to a hang fails the test instead of stalling CI, and checks
//! that good samples are still written and the bad one is reported.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{mplug, ok, vocab};

/// Runs `cmd`, killing it and failing the test when it runs past `secs`.
fn run_within(mut cmd: Command, secs: u64) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(secs);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("{cmd:?} hung (killed after {secs} s)");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path and a mode.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

fn ingest_coco(raw: &Path, annotations: &[PathBuf], out: &Path) -> Command {
    let mut cmd = mplug();
    cmd.args(["ingest", "coco", "--quiet", "--annotations"])
        .args(annotations)
        .arg("--images")
        .arg(raw.join("images"))
        .arg("--out")
        .arg(out)
        .arg("--vocab")
        .arg(vocab());
    cmd
}

/// `synth --images n --seed seed` into `dir/raw`.
fn synth_images(dir: &Path, n: usize, seed: u64) -> PathBuf {
    let raw = dir.join("raw");
    ok(mplug()
        .args([
            "synth",
            "--images",
            &n.to_string(),
            "--seed",
            &seed.to_string(),
            "--out",
        ])
        .arg(&raw)
        .output()
        .unwrap());
    raw
}

/// The files of `dir` (sorted), one level deep.
fn sorted_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// A FIFO, a device link and a directory where images are expected: each is a reject naming what
/// it is; the other images are written; nothing waits for a writer.
#[test]
fn special_files_where_images_are_expected_are_rejects_not_hangs() {
    let dir = tempfile::tempdir().unwrap();
    let raw = synth_images(dir.path(), 8, 4);
    let train = sorted_files(&raw.join("images/train2017"));
    std::fs::remove_file(&train[0]).unwrap();
    mkfifo(&train[0]);
    std::fs::remove_file(&train[1]).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &train[1]).unwrap();
    std::fs::remove_file(&train[2]).unwrap();
    std::fs::create_dir(&train[2]).unwrap();
    let ann = raw.join("annotations");
    let out = dir.path().join("coco");
    let files = [
        ann.join("captions_train2017.json"),
        ann.join("captions_val2017.json"),
    ];
    let res = run_within(ingest_coco(&raw, &files, &out), 120);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let m = manifest(&out);
    assert_eq!(m["totals"]["images_written"], 5, "{}", m["rejects"]);
    let reasons: Vec<String> = m["rejects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap().to_string())
        .collect();
    // /dev/zero resolves outside the image root; the other two are named for what they are.
    for want in [
        "a FIFO, not a regular file",
        "outside the image root",
        "a directory, not a regular file",
    ] {
        assert!(
            reasons.iter().any(|r| r.contains(want)),
            "{want}: {reasons:?}"
        );
    }
}

/// A FIFO given as an annotation file is an error naming it (exit 2), at once.
#[test]
fn a_fifo_as_annotation_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let raw = synth_images(dir.path(), 2, 1);
    let fifo = dir.path().join("captions_train2017.json");
    mkfifo(&fifo);
    let res = run_within(ingest_coco(&raw, &[fifo], &dir.path().join("out")), 60);
    assert_eq!(res.status.code(), Some(2));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.contains("cannot read annotation file") && err.contains("a FIFO, not a regular file"),
        "{err}"
    );
}

#[cfg(feature = "video")]
mod video {
    use super::*;

    fn synth_videos(dir: &Path) -> PathBuf {
        let raw = dir.join("raw");
        ok(mplug()
            .args(["synth", "--video", "--clips", "6", "--out"])
            .arg(&raw)
            .output()
            .unwrap());
        raw
    }

    fn ingest_msrvtt(raw: &Path, videos: &Path, out: &Path) -> Command {
        let mut cmd = mplug();
        cmd.args([
            "ingest", "msrvtt", "--quiet", "--frames", "2", "--size", "32",
        ])
        .arg("--annotations")
        .arg(raw.join("msrvtt/annotations/train_val_videodatainfo.json"))
        .arg("--videos")
        .arg(videos)
        .arg("--out")
        .arg(out)
        .arg("--vocab")
        .arg(vocab());
        cmd
    }

    fn clips(videos: &Path) -> Vec<PathBuf> {
        sorted_files(videos)
            .into_iter()
            .filter(|p| p.is_file())
            .collect()
    }

    /// A FIFO named like a clip is a reject; the other clips are written.
    #[test]
    fn a_fifo_clip_is_a_reject_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        let raw = synth_videos(dir.path());
        let videos = raw.join("msrvtt/videos");
        let all = clips(&videos);
        std::fs::remove_file(&all[0]).unwrap();
        mkfifo(&all[0]);
        let out = dir.path().join("msrvtt");
        let res = run_within(ingest_msrvtt(&raw, &videos, &out), 180);
        assert!(
            res.status.success(),
            "{}",
            String::from_utf8_lossy(&res.stderr)
        );
        let m = manifest(&out);
        let rejects = m["rejects"].to_string();
        assert!(rejects.contains("a FIFO, not a regular file"), "{rejects}");
        assert_eq!(
            m["totals"]["images_written"].as_u64().unwrap() + 1,
            all.len() as u64,
            "{rejects}"
        );
    }

    /// Directory links under --videos are not walked: a loop, a link to `/` and a link to a folder
    /// outside the root holding copies of the clips (which would shadow the real ones and be
    /// rejected as outside the root) leave the dataset exactly as without them.
    #[test]
    fn directory_links_under_the_video_root_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let raw = synth_videos(dir.path());
        let videos = raw.join("msrvtt/videos");
        let clean = dir.path().join("clean");
        let res = run_within(ingest_msrvtt(&raw, &videos, &clean), 180);
        assert!(
            res.status.success(),
            "{}",
            String::from_utf8_lossy(&res.stderr)
        );

        let outside = dir.path().join("outside_copies");
        std::fs::create_dir(&outside).unwrap();
        for clip in clips(&videos) {
            std::fs::copy(&clip, outside.join(clip.file_name().unwrap())).unwrap();
        }
        // "a_" sorts before the clip files, so a walk through it would find the copies first.
        std::os::unix::fs::symlink(&outside, videos.join("a_outside")).unwrap();
        std::os::unix::fs::symlink("..", videos.join("b_loop")).unwrap();
        std::os::unix::fs::symlink("/", videos.join("c_root")).unwrap();
        let linked = dir.path().join("linked");
        let res = run_within(ingest_msrvtt(&raw, &videos, &linked), 180);
        assert!(
            res.status.success(),
            "{}",
            String::from_utf8_lossy(&res.stderr)
        );
        let (a, b) = (manifest(&clean), manifest(&linked));
        assert_eq!(b["rejects"], a["rejects"]);
        assert_eq!(b["dataset_blake3"], a["dataset_blake3"]);
    }
}

/// Settings edited inside manifest.json fail `mplug verify`, which names what changed: the
/// `pipeline` field when only it is edited, and every shard when a forger also rewrites its hash
/// and the dataset hash (each shard's footer keeps the settings hash it was written with).
#[test]
fn edited_settings_in_the_manifest_fail_verify() {
    use mplug::shards::manifest::{Manifest, json_blake3};
    let dir = tempfile::tempdir().unwrap();
    let raw = synth_images(dir.path(), 4, 1);
    let ann = raw.join("annotations");
    let out = dir.path().join("coco");
    ok(
        ingest_coco(&raw, &[ann.join("captions_train2017.json")], &out)
            .output()
            .unwrap(),
    );
    let verify = || mplug().arg("verify").arg(&out).output().unwrap();
    ok(verify());
    let original = std::fs::read(out.join("manifest.json")).unwrap();

    let mut m = Manifest::read(&out).unwrap();
    m.pipeline["pipeline"]["image"]["jpeg_quality"] = serde_json::json!(50);
    std::fs::write(out.join("manifest.json"), m.to_json_bytes()).unwrap();
    let res = verify();
    assert!(!res.status.success());
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.contains("manifest: `pipeline` (the resolved settings)"),
        "{err}"
    );

    m.pipeline_blake3 = json_blake3(&m.pipeline);
    m.dataset_blake3 = m.compute_dataset_hash();
    std::fs::write(out.join("manifest.json"), m.to_json_bytes()).unwrap();
    let res = verify();
    assert!(!res.status.success());
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.contains("shards/part-00000.parquet: written with settings hashing to"),
        "{err}"
    );

    std::fs::write(out.join("manifest.json"), original).unwrap();
    ok(verify());
}

/// A query that would run for hours is stopped by --timeout, and one whose sort needs more memory
/// than --memory-limit fails with a hint, both as user errors (exit 2), without taking the machine.
#[test]
fn sql_queries_are_bounded_in_time_and_memory() {
    let root = &crate::sql::fixture().root;
    let sql = |args: &[&str]| {
        let mut cmd = mplug();
        cmd.arg("sql").arg("--data").arg(root).args(args);
        run_within(cmd, 60)
    };
    let res = sql(&[
        "--timeout",
        "1",
        "SELECT count(*) FROM generate_series(1, 100000000000)",
    ]);
    assert_eq!(res.status.code(), Some(2));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(err.contains("ran longer than 1 s and was stopped"), "{err}");

    let res = sql(&[
        "--memory-limit",
        "1KiB",
        "SELECT c FROM (SELECT unnest(captions) AS c FROM coco) t ORDER BY c",
    ]);
    assert_eq!(res.status.code(), Some(2));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.contains("Resources exhausted") && err.contains("--memory-limit"),
        "{err}"
    );
    // The default limits leave ordinary queries alone.
    let res = sql(&["SELECT c FROM (SELECT unnest(captions) AS c FROM coco) t ORDER BY c"]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
}

/// A truncated shard leaves its dataset out of `mplug sql` with a warning naming the file; queries
/// on the healthy dataset beside it and `SHOW TABLES` keep working.
#[test]
fn one_bad_shard_does_not_break_every_query() {
    let dir = tempfile::tempdir().unwrap();
    let raw = synth_images(dir.path(), 4, 1);
    let ann = raw.join("annotations");
    let root = dir.path().join("data");
    for name in ["good", "broken"] {
        ok(ingest_coco(
            &raw,
            &[ann.join("captions_train2017.json")],
            &root.join(name),
        )
        .output()
        .unwrap());
    }
    let shard = root.join("broken/shards/part-00000.parquet");
    let bytes = std::fs::read(&shard).unwrap();
    std::fs::write(&shard, &bytes[..bytes.len() / 2]).unwrap();
    let sql = |q: &str| {
        let mut cmd = mplug();
        cmd.arg("sql")
            .arg("--data")
            .arg(&root)
            .args(["--format", "csv", q]);
        run_within(cmd, 60)
    };
    let res = sql("SELECT count(*) AS n FROM good");
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.contains("dataset `broken` is left out") && err.contains("part-00000.parquet"),
        "{err}"
    );
    let tables = ok(sql("SHOW TABLES"));
    assert!(
        tables.contains("good") && !tables.contains(",broken,"),
        "{tables}"
    );
    assert_eq!(sql("SELECT count(*) FROM broken").status.code(), Some(2));

    // leakage and the loader cannot leave a dataset out silently: they stop, naming file and dataset
    let mut leakage = mplug();
    leakage.arg("leakage").arg("--data").arg(&root);
    let mut loader = mplug();
    loader
        .args(["loader", "bench", "--data"])
        .arg(root.join("broken"));
    let mut select = mplug();
    select
        .arg("select")
        .arg("--data")
        .arg(&root)
        .args([
            "--sql",
            "SELECT 'good' AS dataset, image_id FROM good",
            "--out",
        ])
        .arg(dir.path().join("list.json"));
    for (name, cmd) in [("leakage", leakage), ("loader", loader)] {
        let res = run_within(cmd, 60);
        let err = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(1), "{name}: {err}");
        assert!(
            err.contains("broken/shards/part-00000.parquet` of dataset `broken` is unreadable"),
            "{name}: {err}"
        );
    }
    // a sample list over the healthy dataset does not read the broken one
    let res = run_within(select, 60);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
}

/// Runs `tests/py/<script>` with the venv's Python; its stdout.
fn py(script: &str, args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new(crate::common::python())
        .arg(crate::common::repo().join("tests/py").join(script))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `hostile_images.py MODE` over the first train images of `raw`; the variant names.
fn write_variants(raw: &Path, mode: &str) -> Vec<String> {
    let train = sorted_files(&raw.join("images/train2017"));
    let mut args: Vec<&std::ffi::OsStr> = vec![mode.as_ref()];
    args.extend(train.iter().map(|p| p.as_os_str()));
    py("hostile_images.py", &args)
        .lines()
        .map(|l| l.split_whitespace().nth(1).unwrap().to_string())
        .collect()
}

/// Classes 8 and 9: 16-bit PNG in all four colour types, GIF (still, animated, transparent index),
/// WebP (lossless and lossy, with and without alpha), BMP (RGB, palette), TIFF (raw, LZW, deflate
/// grey, RGBA) and a JPEG whose EXIF next-IFD pointer loops to itself are all kept, and their stored
/// pixels equal Pillow's `exif_transpose(open(p)).convert("RGB")` exactly (tests/py/check_dataset.py).
#[test]
fn web_formats_and_16_bit_pngs_are_kept_and_equal_pillow() {
    let dir = tempfile::tempdir().unwrap();
    let raw = synth_images(dir.path(), 30, 5);
    let variants = write_variants(&raw, "good");
    assert!(variants.len() >= 18, "{variants:?}");
    let out = dir.path().join("coco");
    let ann = raw.join("annotations");
    let files = [
        ann.join("captions_train2017.json"),
        ann.join("captions_val2017.json"),
    ];
    let mut cmd = ingest_coco(&raw, &files, &out);
    cmd.args(["--codec", "raw", "--max-side", "0"]);
    let res = run_within(cmd, 120);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let m = manifest(&out);
    assert_eq!(m["rejects"], serde_json::json!([]), "good samples lost");
    assert_eq!(m["totals"]["images_written"], 30);
    let report = py(
        "check_dataset.py",
        &[
            "pixels".as_ref(),
            out.as_os_str(),
            raw.join("images").as_os_str(),
            "0".as_ref(),
            "0".as_ref(),
        ],
    );
    for kind in [
        "PNG/I;16",
        "PNG/RGB\"",
        "PNG/RGBA",
        "GIF/P",
        "WEBP/RGB\"",
        "WEBP/RGBA",
        "BMP/RGB",
        "BMP/P",
        "TIFF/RGB\"",
        "TIFF/L",
        "TIFF/RGBA",
        "JPEG/RGB/exif",
    ] {
        assert!(report.contains(kind), "{kind} not exercised: {report}");
    }
}

/// Class 4: PNG metadata that inflates past Pillow's 1 MiB cap (an ICC profile of 256 MiB of zeros,
/// compressed and uncompressed-flagged text) is a reject naming the chunk, decided without inflating
/// it; the other images are written.
#[test]
fn png_metadata_bombs_are_rejects_with_their_reason() {
    let dir = tempfile::tempdir().unwrap();
    let raw = synth_images(dir.path(), 8, 6);
    let variants = write_variants(&raw, "bombs");
    let out = dir.path().join("coco");
    let files = [raw.join("annotations/captions_train2017.json")];
    let res = run_within(ingest_coco(&raw, &files, &out), 60);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let m = manifest(&out);
    let reasons: Vec<&str> = m["rejects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons.len(), variants.len(), "{reasons:?}");
    for chunk in ["iCCP", "zTXt", "iTXt"] {
        let want = format!("PNG {chunk} chunk inflates to more than 1048576 bytes");
        assert!(
            reasons.iter().any(|r| r.contains(&want)),
            "{want}: {reasons:?}"
        );
    }
    let seen = m["totals"]["images_seen"].as_u64().unwrap();
    assert_eq!(m["totals"]["images_written"].as_u64().unwrap(), seen - 3);
}

/// Pickles built to exhaust the process, as bytes a hostile `refs(unc).p` or `.pth` would hold.
fn hostile_pickles() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let n = 100_000;
    let mut lists = vec![0x80, 2];
    lists.extend(std::iter::repeat_n(b']', n));
    lists.extend(std::iter::repeat_n(b'a', n - 1));
    lists.push(b'.');
    let mut tuples = vec![0x80, 2];
    tuples.extend(std::iter::repeat_n(b'(', n));
    tuples.extend(std::iter::repeat_n(b't', n));
    tuples.push(b'.');
    // t = (); 64 times: t = (t, t), through BINPUT/BINGET
    let mut bomb = vec![0x80, 2, b')', b'q', 0];
    for _ in 0..64 {
        bomb.extend([b'0', b'h', 0, b'h', 0, 0x86, b'q', 0]);
    }
    bomb.push(b'.');
    vec![
        ("deep lists", lists, "nesting deeper than 1000"),
        ("deep tuples", tuples, "nesting deeper than 1000"),
        ("memo bomb", bomb, "memo bomb"),
        (
            "self-containing list",
            b"\x80\x02]q\x00h\x00a.".to_vec(),
            "contains itself",
        ),
    ]
}

/// Class 3: each hostile pickle as RefCOCO's `refs(unc).p` is an error naming the file and the
/// reason (exit 2), never a stack overflow or an allocation failure.
#[test]
fn hostile_refcoco_pickles_are_errors_not_aborts() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("refcoco");
    std::fs::create_dir_all(&folder).unwrap();
    let instances = folder.join("instances.json");
    std::fs::write(
        &instances,
        r#"{"images": [], "annotations": [], "categories": []}"#,
    )
    .unwrap();
    let refs = folder.join("refs(unc).p");
    for (name, bytes, want) in hostile_pickles() {
        std::fs::write(&refs, bytes).unwrap();
        let mut cmd = mplug();
        cmd.args(["ingest", "refcoco", "--quiet", "--annotations"])
            .arg(&refs)
            .arg(&instances)
            .arg("--images")
            .arg(dir.path())
            .arg("--out")
            .arg(dir.path().join("out"))
            .arg("--vocab")
            .arg(vocab());
        let res = run_within(cmd, 60);
        let err = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(2), "{name}: {err}");
        assert!(
            err.contains("refs(unc).p") && err.contains(want),
            "{name}: {err}"
        );
    }
}

/// Class 3: the same pickles as a checkpoint's `data.pkl` (`torch.save`'s zip layout): `mplug
/// convert` reports them as a malformed file (exit 1, like every unreadable checkpoint; an abort
/// would have no exit code at all).
#[test]
fn hostile_checkpoint_pickles_are_errors_not_aborts() {
    let dir = tempfile::tempdir().unwrap();
    for (i, (name, bytes, want)) in hostile_pickles().into_iter().enumerate() {
        let pkl = dir.path().join(format!("data{i}.pkl"));
        std::fs::write(&pkl, bytes).unwrap();
        let pth = dir.path().join(format!("ckpt{i}.pth"));
        py_inline(
            "import sys, zipfile\n\
             with zipfile.ZipFile(sys.argv[2], 'w') as z:\n    \
                 z.write(sys.argv[1], 'archive/data.pkl')\n    \
                 z.writestr('archive/version', '3\\n')",
            &[&pkl, &pth],
        );
        let mut cmd = mplug();
        cmd.arg("convert")
            .arg(&pth)
            .arg(dir.path().join("out.safetensors"));
        let res = run_within(cmd, 60);
        let err = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(1), "{name}: {err}");
        assert!(
            err.contains("data.pkl") && err.contains(want),
            "{name}: {err}"
        );
        assert!(!dir.path().join("out.safetensors").exists());
    }
}

/// Runs an inline Python program with `args`.
fn py_inline(code: &str, args: &[&Path]) {
    let out = Command::new(crate::common::python())
        .arg("-c")
        .arg(code)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
