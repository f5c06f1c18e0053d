//! `mplug train` end to end on the tiny model and synthetic shards (CPU): exact resume after a stop
//! and after a crash inside a checkpoint write, configuration errors before any work, and the
//! per-phase step times of `train.profile`.

use std::path::Path;

use crate::common::{mplug, ok, repo, synth_coco_dataset};

const TINY: &str = "configs/pretrain_tiny.yaml";

/// `mplug train` of the tiny config on `data` for six steps, checkpoints every two (the tests add to it).
pub(crate) fn train(data: &Path, out: &Path, extra: &[&str]) -> std::process::Command {
    let mut c = mplug();
    c.current_dir(repo())
        .args([
            "train", "--quiet", "--device", "cpu", "--config", TINY, "--data",
        ])
        .arg(data)
        .arg("--out")
        .arg(out)
        .args([
            "--set",
            "train.max_steps=6",
            "--set",
            "train.checkpoint_every=2",
            "--set",
            "batch_size=8",
            "--set",
            "queue_size=64",
            "--set",
            "train.threads=2",
        ])
        .args(extra);
    c
}

/// `mplug train --resume RUN` on the CPU.
fn resume(run: &Path) -> std::process::Output {
    mplug()
        .args(["train", "--quiet", "--device", "cpu", "--resume"])
        .arg(run)
        .output()
        .unwrap()
}

/// Every metrics field that does not measure time, per line.
fn curve(run: &Path) -> Vec<serde_json::Value> {
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

#[test]
fn resume_after_a_stop_or_a_crash_in_a_checkpoint_write_equals_the_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synth_coco_dataset(tmp.path(), 48, 3);
    let straight = tmp.path().join("straight");
    ok(train(&data, &straight, &[]).output().unwrap());
    let want = curve(&straight);
    assert_eq!(want.len(), 6);
    assert!(want.iter().all(|l| l["loss"].as_f64().unwrap().is_finite()));

    // Stopped after step 3 (checkpoint at 3), resumed.
    let stopped = tmp.path().join("stopped");
    ok(train(&data, &stopped, &["--stop-at-step", "3"])
        .output()
        .unwrap());
    assert_eq!(curve(&stopped).len(), 3);
    ok(resume(&stopped));
    assert_eq!(curve(&stopped), want);

    // The process dies (abort, as kill -9) inside the step-4 checkpoint write, after the weights
    // were written: `latest` still names step 2, complete, and the resume replays steps 3..6.
    let crashed = tmp.path().join("crashed");
    let out = train(&data, &crashed, &[])
        .env("MPLUG_CRASH_DURING_CHECKPOINT", "4")
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "the injected crash must kill the run"
    );
    let latest = std::fs::read_to_string(crashed.join("latest")).unwrap();
    assert_eq!(latest.trim(), "checkpoints/step-00000002");
    assert!(
        std::fs::read_dir(crashed.join("checkpoints"))
            .unwrap()
            .any(|e| e.unwrap().file_name().to_string_lossy().contains(".tmp-")),
        "the half-written checkpoint is there before the resume"
    );
    ok(resume(&crashed));
    assert_eq!(curve(&crashed), want);
    let left: Vec<String> = std::fs::read_dir(crashed.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.iter().all(|n| !n.contains(".tmp-")), "{left:?}");
    assert_eq!(
        std::fs::read_to_string(crashed.join("latest"))
            .unwrap()
            .trim(),
        "checkpoints/step-00000006"
    );
    // Same weights at the end, byte for byte.
    let a = std::fs::read(straight.join("checkpoints/step-00000006/model.safetensors")).unwrap();
    let b = std::fs::read(crashed.join("checkpoints/step-00000006/model.safetensors")).unwrap();
    assert!(a == b, "final weights differ after crash + resume");

    // The curves: a 1400x1000 PNG with something drawn in each of the four panels.
    let png = tmp.path().join("curves.png");
    ok(mplug()
        .arg("plot")
        .arg(&crashed)
        .arg("--out")
        .arg(&png)
        .output()
        .unwrap());
    let img = image::open(&png).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (1400, 1000));
    for (x0, y0) in [(0, 0), (700, 0), (0, 500), (700, 500)] {
        let coloured = (x0 + 80..x0 + 680)
            .flat_map(|x| (y0 + 40..y0 + 460).map(move |y| (x, y)))
            .filter(|&(x, y)| {
                let p = img.get_pixel(x, y).0;
                p[0].abs_diff(p[1]) > 60 || p[1].abs_diff(p[2]) > 60
            })
            .count();
        assert!(
            coloured > 200,
            "panel at ({x0}, {y0}) has {coloured} coloured pixels"
        );
    }
}

#[test]
fn bad_configs_fail_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("missing");
    let cases: [(&[&str], &str); 4] = [
        (&["--set", "bogus_key=1"], "bogus_key"),
        (&["--set", "batch_size=many"], "batch_size"),
        (&["--set", "train.seeed=1"], "seeed"),
        (&["--set", "queue_size=100"], "multiple of batch_size"),
    ];
    let real = synth_coco_dataset(tmp.path(), 8, 1);
    for (i, (extra, needle)) in cases.iter().enumerate() {
        let out_dir = tmp.path().join(format!("run{i}"));
        let out = train(&real, &out_dir, extra).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(needle), "{extra:?}: {err}");
        assert!(!out_dir.exists(), "{extra:?} created the run directory");
    }
    let out_dir = tmp.path().join("nodata");
    let out = train(&data, &out_dir, &[]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("does not exist"),
        "{err}"
    );
    assert!(!out_dir.exists());
}

/// `train.profile` splits each step's wall time into phases that add up to (nearly) the step's
/// time, which `samples_per_s` measures independently; without it the fields are absent.
#[test]
fn profiled_phases_add_up_to_the_step_time() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synth_coco_dataset(tmp.path(), 16, 1);
    let run = tmp.path().join("run");
    ok(train(&data, &run, &["--set", "train.profile=true"])
        .output()
        .unwrap());
    let text = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 6);
    for l in &lines {
        let ms = |k: &str| l[k].as_f64().unwrap_or_else(|| panic!("{k} missing: {l}"));
        let phases = ["ms_data", "ms_forward", "ms_backward", "ms_optimizer"].map(ms);
        assert!(phases[1] > 0.0 && phases[2] > 0.0 && phases[3] > 0.0, "{l}");
        let step_ms = 1e3 * 8.0 / ms("samples_per_s");
        let sum: f64 = phases.iter().sum();
        assert!(
            sum <= step_ms * 1.001 && sum >= 0.8 * step_ms,
            "{sum} vs {step_ms}: {l}"
        );
    }
    let plain = tmp.path().join("plain");
    ok(train(&data, &plain, &[]).output().unwrap());
    let first = std::fs::read_to_string(plain.join("metrics.jsonl")).unwrap();
    assert!(!first.contains("ms_forward"), "{first}");
}
