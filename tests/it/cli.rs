//! The command line as a user sees it, pinned by insta snapshots of the whole exchange (exit code,
//! stdout, stderr; tests/it/snapshots/): ingest summaries, errors with their causes and hints,
//! `--help`. Counts in the snapshots are fixed by each fixture (`synth --images 6` writes 6 images
//! with 5 captions each); hashes, timings and sizes are masked. Review changes with
//! `cargo insta review` (or `INSTA_UPDATE=always`, then read the diff).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{exchange, mplug, ok, snapshot_settings, vocab};

/// Six synthetic COCO images (5 captions each) in `dir/raw`.
fn six_images(dir: &Path) -> PathBuf {
    let raw = dir.join("raw");
    ok(mplug()
        .args(["synth", "--images", "6", "--seed", "3", "--out"])
        .arg(&raw)
        .output()
        .unwrap());
    raw
}

fn ingest_coco(raw: &Path, out: &Path) -> Command {
    ingest_coco_from(raw, &raw.join("images"), out)
}

fn ingest_coco_from(raw: &Path, images: &Path, out: &Path) -> Command {
    let mut cmd = mplug();
    cmd.args(["ingest", "coco", "--quiet", "--annotations"])
        .arg(raw.join("annotations/captions_train2017.json"))
        .arg(raw.join("annotations/captions_val2017.json"))
        .arg("--images")
        .arg(images)
        .arg("--out")
        .arg(out)
        .arg("--vocab")
        .arg(vocab());
    cmd
}

#[test]
fn ingest_summary_then_up_to_date() {
    let dir = tempfile::tempdir().unwrap();
    let raw = six_images(dir.path());
    let out = dir.path().join("coco");
    let settings = snapshot_settings(dir.path());
    let first = ingest_coco(&raw, &out).output().unwrap();
    let again = ingest_coco(&raw, &out).output().unwrap();
    settings.bind(|| {
        insta::assert_snapshot!("ingest_coco_summary", exchange(&first));
        insta::assert_snapshot!("ingest_coco_up_to_date", exchange(&again));
    });
}

#[test]
fn ingest_errors_name_the_object_and_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let raw = six_images(dir.path());
    let out = dir.path().join("coco");
    let settings = snapshot_settings(dir.path());
    let missing_images = ingest_coco_from(&raw, &dir.path().join("nope"), &out)
        .output()
        .unwrap();
    let unknown_pipeline = ingest_coco(&raw, &out)
        .args(["--pipeline", "imagenet"])
        .output()
        .unwrap();
    let video_pipeline = ingest_coco(&raw, &out)
        .args(["--pipeline", "msrvtt"])
        .output()
        .unwrap();
    let bad_file = dir.path().join("bad.toml");
    let text = std::fs::read_to_string(crate::common::repo().join("pipelines/coco.toml"))
        .unwrap()
        .replace("max_side = 512", "max_sid = 512");
    std::fs::write(&bad_file, text).unwrap();
    let bad_pipeline = ingest_coco(&raw, &out)
        .arg("--pipeline")
        .arg(&bad_file)
        .output()
        .unwrap();
    let first_val_image = raw
        .join("images/val2017")
        .read_dir()
        .unwrap()
        .map(|e| e.unwrap().path())
        .min()
        .unwrap();
    std::fs::remove_file(first_val_image).unwrap();
    let strict = ingest_coco(&raw, &out).arg("--strict").output().unwrap();
    settings.bind(|| {
        insta::assert_snapshot!("ingest_error_missing_images", exchange(&missing_images));
        insta::assert_snapshot!("ingest_error_unknown_pipeline", exchange(&unknown_pipeline));
        insta::assert_snapshot!(
            "ingest_error_pipeline_of_other_media",
            exchange(&video_pipeline)
        );
        insta::assert_snapshot!(
            "ingest_error_invalid_pipeline_file",
            exchange(&bad_pipeline)
        );
        insta::assert_snapshot!("ingest_error_strict", exchange(&strict));
    });
    assert!(!out.join("manifest.json").exists(), "nothing half-written");
}

#[test]
fn help_explains_the_commands() {
    let settings = snapshot_settings(Path::new("/nonexistent"));
    let help = |args: &[&str]| ok(mplug().args(args).arg("--help").output().unwrap());
    settings.bind(|| {
        insta::assert_snapshot!("help_mplug", help(&[]));
        insta::assert_snapshot!("help_ingest", help(&["ingest"]));
        insta::assert_snapshot!("help_ingest_coco", help(&["ingest", "coco"]));
        insta::assert_snapshot!("help_sql", help(&["sql"]));
    });
}

#[test]
fn sql_errors_say_where_and_what_to_do() {
    let root = &crate::sql::fixture().root;
    let settings = snapshot_settings(root.parent().unwrap());
    let sql = |q: &str| {
        mplug()
            .arg("sql")
            .arg("--data")
            .arg(root)
            .arg(q)
            .output()
            .unwrap()
    };
    let syntax = sql("SELEC count(*) FROM coco");
    let table = sql("SELECT * FROM no_such_table");
    let copy = sql(&format!(
        "COPY (SELECT image_id FROM coco) TO '{}'",
        root.join("copied.parquet").display()
    ));
    settings.bind(|| {
        insta::assert_snapshot!("sql_error_syntax", exchange(&syntax));
        insta::assert_snapshot!("sql_error_no_such_table", exchange(&table));
        insta::assert_snapshot!("sql_error_read_only", exchange(&copy));
    });
    assert!(!root.join("copied.parquet").exists());
}
