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
    let raw = dir.path().join("raw");
    ok(mplug()
        .args(["synth", "--images", "8", "--seed", "4", "--out"])
        .arg(&raw)
        .output()
        .unwrap());
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
    let raw = dir.path().join("raw");
    ok(mplug()
        .args(["synth", "--images", "2", "--out"])
        .arg(&raw)
        .output()
        .unwrap());
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
