//! A split ingest (`mplug ingest … --part I/N`) merged (`mplug merge`) equals the one-machine
//! ingest: the same rows in the same order (pyarrow reads both), the same rejects and counts, the
//! same `rows_blake3` although the shards are cut elsewhere; a part missing, duplicated or built
//! with other settings stops the merge with exit 2 naming it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{mplug, ok, python, vocab};

fn ingest(raw: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    mplug()
        .args(["ingest", "coco", "--quiet", "--annotations"])
        .arg(raw.join("annotations/coco_karpathy_train.json"))
        .arg("--images")
        .arg(raw.join("images"))
        .arg("--out")
        .arg(out)
        .arg("--vocab")
        .arg(vocab())
        .args(["--max-side", "64"])
        .args(extra)
        .output()
        .unwrap()
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

fn merge(parts: &[&PathBuf], out: &Path) -> std::process::Output {
    mplug()
        .arg("merge")
        .args(parts)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

#[test]
fn three_parts_merged_equal_the_one_machine_ingest() {
    let t = tempfile::tempdir().unwrap();
    let raw = t.path().join("raw");
    // the synthetic set's first images are the odd formats; one annotation names a missing file
    ok(mplug()
        .args(["synth", "--images", "23", "--seed", "4", "--out"])
        .arg(&raw)
        .output()
        .unwrap());
    let ann: serde_json::Value = serde_json::from_slice(
        &std::fs::read(raw.join("annotations/coco_karpathy_train.json")).unwrap(),
    )
    .unwrap();
    let mut images: Vec<&str> = ann
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["image"].as_str().unwrap())
        .collect();
    images.dedup();
    // the 10th image (part 1 of 3) is missing: a reject in the middle of the list
    std::fs::remove_file(raw.join("images").join(images[9])).unwrap();
    let one = t.path().join("one");
    ok(ingest(&raw, &one, &["--shard-size", "64KiB"]));
    let parts: Vec<PathBuf> = (0..3).map(|i| t.path().join(format!("part{i}"))).collect();
    for (i, p) in parts.iter().enumerate() {
        // other shard and row-group sizes: the cuts differ from the one-machine run's
        let part = format!("{i}/3");
        ok(ingest(&raw, p, &["--part", &part, "--shard-size", "24KiB"]));
    }
    let merged = t.path().join("merged");
    // any order on the command line
    ok(merge(&[&parts[2], &parts[0], &parts[1]], &merged));
    ok(mplug().arg("verify").arg(&merged).output().unwrap());
    let (a, b) = (manifest(&one), manifest(&merged));
    assert_eq!(a["rows_blake3"], b["rows_blake3"]);
    assert!(a["rows_blake3"].as_str().is_some_and(|h| h.len() == 64));
    assert_ne!(
        a["dataset_blake3"], b["dataset_blake3"],
        "the shards are cut elsewhere"
    );
    assert_ne!(a["totals"]["shards"], b["totals"]["shards"]);
    assert_eq!(a["rejects"], b["rejects"]);
    assert!(
        !a["rejects"].as_array().unwrap().is_empty(),
        "the missing image is a reject"
    );
    for k in [
        "images_seen",
        "images_written",
        "images_rejected",
        "captions_written",
    ] {
        assert_eq!(a["totals"][k], b["totals"][k], "{k}");
    }
    // pyarrow: every column of every row, in order
    let script = r#"
import json, sys, pyarrow.parquet as pq, pyarrow as pa
def rows(d):
    m = json.load(open(d + "/manifest.json"))
    return pa.concat_tables([pq.read_table(d + "/" + s["path"]) for s in m["shards"]]).to_pylist()
a, b = rows(sys.argv[1]), rows(sys.argv[2])
assert len(a) > 10, len(a)
assert a == b, next(i for i, (x, y) in enumerate(zip(a, b)) if x != y)
print(len(a))
"#;
    let out = ok(Command::new(python())
        .args(["-c", script])
        .arg(&one)
        .arg(&merged)
        .output()
        .unwrap());
    assert_eq!(
        out.trim().parse::<u64>().unwrap(),
        a["totals"]["images_written"].as_u64().unwrap()
    );
    // a part missing, given twice, or built with other settings: exit 2, named
    let bad = |out: std::process::Output, want: &str| {
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(want), "{err}");
    };
    bad(
        merge(&[&parts[0], &parts[2]], &t.path().join("m1")),
        "part 1/3 is missing",
    );
    bad(
        merge(&[&parts[0], &parts[1], &parts[1]], &t.path().join("m2")),
        "part 1/3 is given twice",
    );
    let other = t.path().join("other1");
    ok(ingest(
        &raw,
        &other,
        &["--part", "1/3", "--jpeg-quality", "50"],
    ));
    bad(
        merge(&[&parts[0], &other, &parts[2]], &t.path().join("m3")),
        "other1",
    );
    // a part whose shard changed after its manifest
    let shard = parts[2].join(manifest(&parts[2])["shards"][0]["path"].as_str().unwrap());
    let mut bytes = std::fs::read(&shard).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&shard, bytes).unwrap();
    bad(
        merge(&[&parts[0], &parts[1], &parts[2]], &t.path().join("m4")),
        "changed after its manifest",
    );
}
