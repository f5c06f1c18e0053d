//! Issue 20: a training step of every task reads nothing back from the device. `train.profile`
//! reports `host_reads_per_step` from a libtorch RecordFunction counter (value reads, data-sized ops
//! such as `nonzero`/`masked_select`, device→host copies) over the steps between two metrics lines;
//! the metrics line's own read, evaluation and checkpoints are not counted. Each run here logs every
//! second step, so the steps in between hold their losses on the device.

use std::path::Path;

use crate::common::{ingest_folder, ok, synth_coco_dataset, synth_raw};
use crate::finetune::{finetune_task, init};

fn host_reads(run: &Path) -> Vec<f64> {
    let text = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["host_reads_per_step"]
                .as_f64()
                .unwrap_or_else(|| panic!("no host_reads_per_step in {l}"))
        })
        .collect()
}

const STEPS: [&str; 6] = [
    "--set",
    "train.max_steps=4",
    "--set",
    "train.log_every=2",
    "--set",
    "train.profile=true",
];

#[test]
fn no_task_step_reads_from_the_device() {
    let t = tempfile::tempdir().unwrap();
    let coco = synth_coco_dataset(&t.path().join("c"), 16, 2);
    let raw = synth_raw(&t.path().join("raw"), 16, 5);
    let small = ["--max-side", "48"];
    // (task, ingest command, folder under the synthetic raw data)
    let mut data: Vec<(&str, std::path::PathBuf)> = [
        ("vqa", "vqa", "vqa"),
        ("grounding", "refcoco", "refcoco"),
        ("snli-ve", "snli-ve", "snli_ve"),
        ("nlvr2", "nlvr2", "nlvr2"),
    ]
    .into_iter()
    .map(|(task, kind, folder)| {
        let images = match kind {
            "vqa" => raw.join("images"),
            _ => raw.join(folder).join("images"),
        };
        let out = t.path().join(folder);
        (
            task,
            ingest_folder(kind, &raw.join(folder), &images, &out, &small),
        )
    })
    .collect();
    data.push(("caption", coco.clone()));
    data.push(("retrieval", coco.clone()));
    let weights = init(t.path());
    for (task, data) in &data {
        let config = format!("configs/{}_tiny.yaml", task.replace('-', "_"));
        let run = t.path().join(format!("run-{task}"));
        ok(finetune_task(task, &config, &weights, data, &run)
            .args(STEPS)
            .output()
            .unwrap());
        assert_eq!(host_reads(&run), [0.0, 0.0], "{task}");
    }
    // pre-training: ITC queues, ITM negatives, MLM, PrefixLM, the momentum model
    let run = t.path().join("run-pretrain");
    ok(crate::train::train(&coco, &run, &[])
        .args(STEPS)
        .output()
        .unwrap());
    assert_eq!(host_reads(&run), [0.0, 0.0], "pretrain");
}
