//! `mplug finetune caption-scst` end to end (CPU): from a short cross-entropy caption run, SCST
//! rewards the beams with CIDEr-D against each image's captions, and a stop or a crash inside a
//! checkpoint write resumes to the uninterrupted run (metrics, rewards, weights byte for byte).

use std::path::{Path, PathBuf};

use super::finetune::{curve, finetune_task as finetune, init, resume};
use crate::common::{ok, synth_coco_dataset};

/// A caption model after a few cross-entropy steps: it has learnt the synthetic captions' common
/// words, so some beams earn a CIDEr-D reward and the SCST loss is not zero.
fn caption_checkpoint(dir: &Path, data: &Path) -> PathBuf {
    let run = dir.join("ce");
    ok(finetune(
        "caption",
        "configs/caption_tiny.yaml",
        &init(dir),
        data,
        &run,
    )
    .args([
        "--set",
        "train.max_steps=8",
        "--set",
        "train.grad_accum_steps=1",
    ])
    .args(["--set", "optimizer.lr1=5e-3", "--set", "optimizer.lr2=5e-3"])
    .args([
        "--set",
        "schedular.lr=5e-3",
        "--set",
        "schedular.warmup_lr=5e-3",
    ])
    .output()
    .unwrap());
    run.join("checkpoints/step-00000008")
}

#[test]
fn scst_resume_after_a_stop_or_a_crash_equals_the_uninterrupted_run() {
    let t = tempfile::tempdir().unwrap();
    let data = synth_coco_dataset(t.path(), 12, 3);
    let ce = caption_checkpoint(t.path(), &data);
    let scst = |out: &Path| {
        let mut c = finetune(
            "caption-scst",
            "configs/caption_scst_tiny.yaml",
            &ce,
            &data,
            out,
        );
        c.args([
            "--set",
            "train.max_steps=4",
            "--set",
            "train.checkpoint_every=2",
        ])
        .args(["--set", "train.split=train"]);
        c
    };
    let straight = t.path().join("straight");
    ok(scst(&straight).output().unwrap());
    let want = curve(&straight);
    assert_eq!(want.len(), 4);
    let field = |k: &str| -> Vec<f64> { want.iter().map(|l| l[k].as_f64().unwrap()).collect() };
    let rewards = field("reward_cider");
    assert!(
        rewards.iter().all(|r| r.is_finite() && *r >= 0.0) && rewards.iter().any(|r| *r > 0.0),
        "CIDEr-D rewards: {rewards:?}"
    );
    assert!(
        field("loss_scst").iter().any(|l| *l != 0.0),
        "the beams' rewards differ, so the loss is not zero"
    );

    let stopped = t.path().join("stopped");
    ok(scst(&stopped)
        .args(["--stop-at-step", "3"])
        .output()
        .unwrap());
    assert_eq!(curve(&stopped).len(), 3);
    ok(resume(&stopped));
    assert_eq!(curve(&stopped), want);

    let crashed = t.path().join("crashed");
    let out = scst(&crashed)
        .env("MPLUG_CRASH_DURING_CHECKPOINT", "4")
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "the injected crash must kill the run"
    );
    ok(resume(&crashed));
    assert_eq!(curve(&crashed), want);
    let weights = |run: &Path| {
        std::fs::read(run.join("checkpoints/step-00000004/model.safetensors")).unwrap()
    };
    assert!(
        weights(&straight) == weights(&crashed),
        "final weights differ after crash + resume"
    );
}
