//! URL datasets against a loopback HTTP server: the download client (good, slow, broken,
//! redirecting, failing and non-image answers), kill -9 and resume, img2dataset folders, and the
//! CC3M/CC12M/SBU readers on the real first records in ../shared/samples when present.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::http::TestServer;
use crate::common::{mplug, ok, pattern_jpeg, python, vocab};

/// The server's images: 64x48, or 2048x1536 for `big`.
fn jpeg(token: &str, big: bool) -> Vec<u8> {
    if big {
        pattern_jpeg(token, 2048, 1536)
    } else {
        pattern_jpeg(token, 64, 48)
    }
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

fn ingest_cc3m(list: &Path, images: &Path, out: &Path) -> Command {
    let mut c = mplug();
    c.args(["ingest", "cc3m", "--quiet", "--annotations"])
        .arg(list)
        .arg("--images")
        .arg(images)
        .arg("--out")
        .arg(out)
        .arg("--vocab")
        .arg(vocab())
        .args([
            "--download",
            "--http-timeout",
            "0.8",
            "--retries",
            "1",
            "--backoff",
            "0.05",
            "--concurrency",
            "4",
            "--per-host-rate",
            "0",
        ]);
    c
}

fn reject_for<'a>(m: &'a serde_json::Value, url: &str) -> &'a serde_json::Value {
    m["rejects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["sample_id"] == url)
        .unwrap_or_else(|| panic!("no reject for {url}: {}", m["rejects"]))
}

#[test]
fn download_ingest_records_every_failure_and_retries_them_only_when_asked() {
    let server = TestServer::start(jpeg);
    let t = tempfile::tempdir().unwrap();
    let u = |p: &str| server.url(p);
    // CC3M layout: caption<TAB>url, no header.
    let lines = [
        format!("a good photo\t{}", u("/img/a.jpg")),
        format!("a huge photo\t{}", u("/big/b.jpg")),
        format!("moved photo\t{}", u("/redirect/c")),
        format!("flaky photo\t{}", u("/flaky/d")),
        format!("gone\t{}", u("/404/e")),
        format!("server error\t{}", u("/500/f")),
        format!("a web page\t{}", u("/html/g")),
        format!("too slow\t{}", u("/slow/h")),
        format!("cut off\t{}", u("/broken/i")),
        format!("loops\t{}", u("/loop/j")),
        format!("the \"same\" good photo again\t{}", u("/img/a.jpg")),
        "a caption without url\tnot-a-url".to_string(),
    ];
    let list = t.path().join("Train_GCC-training.tsv");
    std::fs::write(&list, lines.join("\n") + "\n").unwrap();
    let images = t.path().join("images");
    let out = t.path().join("cc3m");
    ok(ingest_cc3m(&list, &images, &out).output().unwrap());

    let m = manifest(&out);
    assert_eq!(m["totals"]["images_written"], 4, "{}", m["totals"]);
    assert_eq!(m["totals"]["captions_written"], 5);
    let expect = [
        ("/404/e", "download", "HTTP 404"),
        ("/500/f", "download", "HTTP 500"),
        (
            "/html/g",
            "download",
            "not an image (content-type text/html",
        ),
        ("/slow/h", "download", "timed out"),
        ("/broken/i", "download", "connection failed"),
        ("/loop/j", "download", "redirect"),
    ];
    for (path, stage, reason) in expect {
        let r = reject_for(&m, &u(path));
        assert_eq!(r["stage"], stage, "{r}");
        let text = r["reason"].as_str().unwrap();
        assert!(text.contains(reason), "{path}: {text}");
    }
    let bad_line = m["rejects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["sample_id"] == "line 12")
        .expect("line without URL");
    assert_eq!(bad_line["stage"], "annotation");
    // Retry policy: 500 and 503 are retried once (retries=1), 404 and non-images are not.
    assert_eq!(server.count("/500/f"), 2);
    assert_eq!(server.count("/flaky/d"), 2);
    assert_eq!(server.count("/404/e"), 1);
    assert_eq!(server.count("/html/g"), 1);
    // The duplicate URL was fetched once.
    assert_eq!(server.count("/img/a.jpg"), 1);
    assert_eq!(server.count("/img/c.jpg"), 1, "the redirect was followed");

    // pyarrow reads the shard; the big image was stored at 512x384 from a 2048x1536 original,
    // decoded by Pillow as baseline JPEG; the duplicate URL has both captions.
    let script = r#"
import sys, io, glob, json
import pyarrow.parquet as pq
from PIL import Image
t = pq.read_table(sorted(glob.glob(sys.argv[1] + "/shards/*.parquet")))
rows = {r["image_id"]: r for r in t.to_pylist()}
for url, r in sorted(rows.items()):
    im = Image.open(io.BytesIO(r["image"]))
    assert not im.info.get("progressive"), url
    print(url.rsplit("/", 2)[-2], r["orig_width"], r["orig_height"], im.size[0], im.size[1],
          len(r["captions"]), r["pixel_dhash"])
"#;
    let py = Command::new(python())
        .arg("-c")
        .arg(script)
        .arg(&out)
        .output()
        .unwrap();
    let text = ok(py);
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split(' ').collect()).collect();
    let by_route = |r: &str| rows.iter().find(|x| x[0] == r).unwrap().clone();
    assert_eq!(by_route("big")[1..5], ["2048", "1536", "512", "384"]);
    assert_eq!(by_route("img")[1..6], ["64", "48", "64", "48", "2"]);
    // The redirect target holds the content of /img/c.jpg, not of /img/a.jpg.
    assert_ne!(by_route("redirect")[6], by_route("img")[6]);

    // A plain rerun fetches nothing (files on disk stay, recorded failures stand) and the dataset
    // is up to date, with the same identity; the log's growth is not part of it.
    let first_hash = manifest(&out)["dataset_blake3"].clone();
    let rerun = ok(ingest_cc3m(&list, &images, &out).output().unwrap());
    assert!(rerun.contains("already up to date"), "{rerun}");
    assert!(rerun.contains("6 failed in an earlier run"), "{rerun}");
    assert_eq!(server.count("/img/a.jpg"), 1);
    assert_eq!(server.count("/big/b.jpg"), 1);
    assert_eq!(server.count("/404/e"), 1);
    assert_eq!(manifest(&out)["dataset_blake3"], first_hash);

    // Retrying failures is explicit; the same failures again leave the dataset as it was.
    let retry = ok(ingest_cc3m(&list, &images, &out)
        .arg("--retry-failed")
        .output()
        .unwrap());
    assert_eq!(server.count("/404/e"), 2);
    assert_eq!(server.count("/img/a.jpg"), 1);
    assert!(retry.contains("already up to date"), "{retry}");
    assert_eq!(manifest(&out)["dataset_blake3"], first_hash);
    assert_eq!(manifest(&out)["totals"]["images_written"], 4);
}

fn log_records(images: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(images.join("downloads.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn kill_9_during_download_then_resume_fetches_each_image_once() {
    let server = TestServer::start(jpeg);
    let t = tempfile::tempdir().unwrap();
    let n = 40;
    let urls: Vec<String> = (0..n)
        .map(|i| server.url(&format!("/delay/{i}.jpg")))
        .collect();
    let list = t.path().join("cc12m.tsv");
    let body: String = urls.iter().map(|u| format!("{u}\tcaption {u}\n")).collect();
    std::fs::write(&list, body).unwrap();
    let images = t.path().join("images");
    let download = || {
        let mut c = mplug();
        c.args(["download", "--quiet", "--annotations"])
            .arg(&list)
            .arg("--images")
            .arg(&images)
            .args(["--concurrency", "2", "--per-host-rate", "0"]);
        c
    };
    // 40 images x 150 ms over 2 connections ≈ 3 s; kill after ~1 s.
    let mut child = download().spawn().unwrap();
    let started = Instant::now();
    while log_records(&images).len() < 6 && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let done_before: Vec<usize> = (0..n)
        .filter(|i| {
            let key = &blake3::hash(urls[*i].as_bytes()).to_hex()[..32];
            images.join(&key[..2]).join(format!("{key}.jpg")).is_file()
        })
        .collect();
    assert!(
        !done_before.is_empty() && done_before.len() < n,
        "kill came at {} of {n}",
        done_before.len()
    );

    ok(download().output().unwrap());
    let last: std::collections::HashMap<String, String> = log_records(&images)
        .into_iter()
        .map(|r| {
            (
                r["url"].as_str().unwrap().to_string(),
                r["outcome"].to_string(),
            )
        })
        .collect();
    for (i, url) in urls.iter().enumerate() {
        let path = format!("/delay/{i}.jpg");
        if done_before.contains(&i) {
            assert_eq!(
                server.count(&path),
                1,
                "{path} was fetched again after resume"
            );
        } else {
            assert_eq!(last.get(url).map(String::as_str), Some("\"ok\""), "{url}");
        }
    }
    // No partial files are left behind.
    let parts = walk(&images)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".part"))
        .count();
    assert_eq!(parts, 0);

    // The dataset built from the killed-and-resumed folder is the one an uninterrupted download
    // gives: identity follows the images and their outcome per URL, not the log's history.
    let fresh = t.path().join("fresh");
    let mut uninterrupted = download();
    let args: Vec<std::ffi::OsString> = uninterrupted.get_args().map(Into::into).collect();
    uninterrupted = mplug();
    for a in &args {
        uninterrupted.arg(if a.as_os_str() == images.as_os_str() {
            fresh.as_os_str()
        } else {
            a
        });
    }
    ok(uninterrupted.output().unwrap());
    let ingest = |images: &Path, out: &Path| {
        let mut c = mplug();
        c.args(["ingest", "cc12m", "--quiet", "--annotations"])
            .arg(&list)
            .arg("--images")
            .arg(images)
            .arg("--out")
            .arg(out)
            .arg("--vocab")
            .arg(vocab());
        ok(c.output().unwrap());
        manifest(out)
    };
    let resumed = ingest(&images, &t.path().join("resumed_ds"));
    let straight = ingest(&fresh, &t.path().join("straight_ds"));
    assert_eq!(resumed["totals"]["images_written"], n);
    assert_eq!(resumed["dataset_blake3"], straight["dataset_blake3"]);
    assert_ne!(
        std::fs::read(images.join("downloads.jsonl")).unwrap(),
        std::fs::read(fresh.join("downloads.jsonl")).unwrap(),
        "the logs differ (a kill leaves its own history), the datasets do not"
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn img2dataset_folder_and_sbu_txt_pair_are_read_without_network() {
    let t = tempfile::tempdir().unwrap();
    let images = t.path().join("img2dataset");
    std::fs::create_dir_all(images.join("00000")).unwrap();
    let urls = [
        "http://static.flickr.com/1/a.jpg",
        "http://static.flickr.com/2/b.jpg",
    ];
    for (i, url) in urls.iter().enumerate() {
        let stem = images.join("00000").join(format!("00000000{i}"));
        std::fs::write(stem.with_extension("jpg"), jpeg(url, false)).unwrap();
        let side = serde_json::json!({"url": url, "caption": "x", "key": format!("00000000{i}"), "status": "success"});
        std::fs::write(stem.with_extension("json"), side.to_string()).unwrap();
    }
    let url_file = t.path().join("SBU_captioned_photo_dataset_urls.txt");
    let cap_file = t.path().join("SBU_captioned_photo_dataset_captions.txt");
    std::fs::write(
        &url_file,
        format!(
            "{}\n{}\nhttp://static.flickr.com/3/c.jpg\n",
            urls[0], urls[1]
        ),
    )
    .unwrap();
    std::fs::write(&cap_file, "first caption\nsecond caption\nthird caption\n").unwrap();
    let out = t.path().join("sbu");
    let run = mplug()
        .args(["ingest", "sbu", "--quiet", "--annotations"])
        .arg(&url_file)
        .arg(&cap_file)
        .arg("--images")
        .arg(&images)
        .arg("--out")
        .arg(&out)
        .arg("--vocab")
        .arg(vocab())
        .output()
        .unwrap();
    ok(run);
    let m = manifest(&out);
    assert_eq!(m["totals"]["images_written"], 2);
    let r = reject_for(&m, "http://static.flickr.com/3/c.jpg");
    assert_eq!(r["stage"], "path");
    assert!(r["reason"].as_str().unwrap().contains("not on disk"));

    // A lone half of the txt pair is an input error naming the fix.
    let bad = mplug()
        .args(["ingest", "sbu", "--quiet", "--annotations"])
        .arg(&url_file)
        .arg("--images")
        .arg(&images)
        .arg("--out")
        .arg(t.path().join("bad"))
        .arg("--vocab")
        .arg(vocab())
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("captions.txt"));
}

#[test]
fn real_sample_lists_parse_into_one_record_per_line() {
    let samples = crate::common::repo().join("../shared/samples");
    let files = [
        ("cc3m", "cc3m/Train_GCC-training_first5.tsv"),
        ("cc3m", "cc3m/Validation_GCC-1.1.0-Validation_first5.tsv"),
        (
            "cc3m",
            "cc3m/Image_Labels_Subset_Train_GCC-Labels-training_first5.tsv",
        ),
        ("cc12m", "cc12m/cc12m_first5.tsv"),
        ("sbu", "sbu/sbu-captions-all_first5.json"),
    ];
    if !samples.join(files[0].1).exists() {
        eprintln!("skipping: ../shared/samples not present");
        return;
    }
    for (dataset, file) in files {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("out");
        let run = mplug()
            .args(["ingest", dataset, "--quiet", "--annotations"])
            .arg(samples.join(file))
            .arg("--images")
            .arg(t.path())
            .arg("--out")
            .arg(&out)
            .arg("--vocab")
            .arg(vocab())
            .output()
            .unwrap();
        ok(run);
        let m = manifest(&out);
        let rejects = m["rejects"].as_array().unwrap();
        // Records counted independently: non-empty lines, or the json's url array.
        let text = std::fs::read_to_string(samples.join(file)).unwrap();
        let records = if file.ends_with(".json") {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            v["image_urls"].as_array().unwrap().len()
        } else {
            text.lines().filter(|l| !l.trim().is_empty()).count()
        };
        // No network here: every record is read and rejected as not downloaded, none as malformed.
        assert_eq!(rejects.len(), records, "{file}: {}", m["rejects"]);
        for r in rejects {
            assert_eq!(r["stage"], "path", "{file}: {r}");
            assert!(r["sample_id"].as_str().unwrap().starts_with("http"), "{r}");
        }
    }
}
