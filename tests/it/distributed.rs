//! Data-parallel training through libtorch's c10d (Gloo over loopback, 2-core CPU): the
//! collectives against hand computation; `mplug launch` naming a failed rank; two ranks of VQA
//! fine-tuning ending with the parameters of one process that trains on both ranks' batches at
//! once (the gradient of a batch mean is the mean of the halves' gradients); a killed rank ending
//! the job in bounded time; a 2-rank checkpoint resuming on 2 ranks (exactly) and on 1.
#![cfg(feature = "dist")]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{mplug, ok, synth_coco_dataset};
use crate::finetune::{curve, finetune_task, init, synth_vqa};

const CONFIG: &str = "configs/vqa_tiny.yaml";
const BIN: &str = env!("CARGO_BIN_EXE_mplug");
/// libtorch's intra-op threads of every process a comparison runs: another count sums in another
/// order (and `mplug launch` would give each of 2 ranks half the cores).
const SAME_THREADS: &str = "1";

fn launch(nproc: usize) -> Command {
    let mut c = mplug();
    c.args(["launch", "--nproc", &nproc.to_string(), "--", BIN])
        .env("MPLUG_DIST_TIMEOUT", "60")
        .env("OMP_NUM_THREADS", SAME_THREADS);
    c
}

#[test]
fn collectives_on_three_ranks_equal_the_hand_computed_results() {
    let out = ok(launch(3)
        .args(["doctor", "--collectives", "--bytes", "1MiB"])
        .output()
        .unwrap());
    let mut ranks: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    ranks.sort_by_key(|r| r["rank"].as_u64());
    assert_eq!(ranks.len(), 3, "{out}");
    for (r, v) in ranks.iter().enumerate() {
        assert_eq!(v["rank"], r as u64);
        assert_eq!(v["world"], 3);
        // Σ_r (r + 1)·[1, 2, 3] = 6·[1, 2, 3]
        assert_eq!(v["all_reduce"], serde_json::json!([6.0, 12.0, 18.0]));
        // rows [r, 10 r] in rank order
        assert_eq!(
            v["all_gather"],
            serde_json::json!([[0.0, 0.0], [1.0, 10.0], [2.0, 20.0]])
        );
        // the last rank's tensor (filled with its rank, 2)
        assert_eq!(v["broadcast"], serde_json::json!([2.0, 2.0, 2.0, 2.0]));
        assert!(v["bus_gb_per_s"].as_f64().unwrap() > 0.0);
    }
}

/// PyTorch's own launcher (torchrun, with its agent's rendezvous store) starts mplug ranks that
/// form one group.
#[test]
fn torchrun_starts_ranks_that_form_a_group() {
    let out = ok(Command::new(crate::common::python())
        .args(["-m", "torch.distributed.run", "--standalone", "--no-python"])
        .args([
            "--nproc-per-node",
            "2",
            BIN,
            "doctor",
            "--collectives",
            "--bytes",
            "64KiB",
        ])
        .env("MPLUG_DIST_TIMEOUT", "60")
        .output()
        .unwrap());
    let ranks: Vec<serde_json::Value> = out
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(ranks.len(), 2, "{out}");
    for v in &ranks {
        assert_eq!(v["all_reduce"], serde_json::json!([3.0, 6.0, 9.0]));
        assert_eq!(
            v["all_gather"],
            serde_json::json!([[0.0, 0.0], [1.0, 10.0]])
        );
    }
}

#[test]
fn launch_names_the_failed_rank_and_stops_the_others() {
    let started = Instant::now();
    let out = mplug()
        .args(["launch", "--nproc", "3", "--grace", "2", "--"])
        .args([
            "sh",
            "-c",
            "if [ \"$RANK\" = 2 ]; then exit 7; fi; sleep 120",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("rank 2 of 3") && stderr.contains("exited with status 7"),
        "{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the sleeping ranks were not stopped"
    );
}

/// VQA fine-tuning with the test's batch per rank and three steps.
fn vqa(data: &Path, init: &Path, out: &Path, batch: usize, steps: u64) -> Command {
    let mut c = finetune_task("vqa", CONFIG, init, data, out);
    c.env("OMP_NUM_THREADS", SAME_THREADS)
        .args(["--set", &format!("batch_size_train={batch}")])
        .args(["--set", &format!("train.max_steps={steps}")])
        .args(["--set", "train.checkpoint_every=2"]);
    c
}

/// The command line of `c` behind `mplug launch --nproc N`.
fn launched(nproc: usize, c: &mut Command) -> Command {
    let mut l = launch(nproc);
    l.args(c.get_args()).current_dir(crate::common::repo());
    l
}

fn weights(run: &Path) -> Vec<(String, tch::Tensor)> {
    let latest = std::fs::read_to_string(run.join("latest")).unwrap();
    let mut w =
        tch::Tensor::read_safetensors(run.join(latest.trim()).join("model.safetensors")).unwrap();
    w.sort_by(|a, b| a.0.cmp(&b.0));
    w
}

/// Largest `max |a − b| / max(max |a|, 1e-3)` over the parameters of two runs' last checkpoints,
/// after checking they hold the same names.
fn parameter_gap(a: &Path, b: &Path) -> f64 {
    let (wa, wb) = (weights(a), weights(b));
    assert_eq!(wa.len(), wb.len());
    let mut worst = 0.0f64;
    for ((na, ta), (nb, tb)) in wa.iter().zip(&wb) {
        assert_eq!(na, nb);
        let diff = (ta - tb).abs().max().double_value(&[]);
        let scale = ta.abs().max().double_value(&[]).max(1e-3);
        worst = worst.max(diff / scale);
    }
    worst
}

fn assert_same_curves(a: &[serde_json::Value], b: &[serde_json::Value], keys: &[&str], tol: f64) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        for key in ["step", "epoch", "iter", "lr"] {
            assert_eq!(x[key], y[key], "{key}");
        }
        for key in keys {
            let (p, q) = (x[key].as_f64().unwrap(), y[key].as_f64().unwrap());
            assert!(
                (p - q).abs() <= tol * p.abs().max(1e-3),
                "{key}: {p} vs {q}\n{x}\n{y}"
            );
        }
    }
}

/// VQA: two ranks with 4 questions each against (a) one process with a batch of 8 — the losses
/// and clipped norms of the same global batch (the gradient of a batch mean is the mean of its
/// halves'; 1e-5 as float sums differ) — and (b) one process that runs both ranks' micro-batches
/// in turn and averages their gradients (`train.simulate_ranks=2`): the parameters after three
/// AdamW steps equal to 1e-6.
#[test]
fn two_ranks_train_as_one_process_running_both_ranks_micro_batches() {
    let t = tempfile::tempdir().unwrap();
    let data = synth_vqa(t.path());
    let init = init(t.path());
    let (one, sim, two) = (
        t.path().join("one"),
        t.path().join("sim"),
        t.path().join("two"),
    );
    // no dropout for (a): one batch of 8 cannot draw the masks of two batches of 4
    let no_dropout = ["--set", "vision_dropout=0"];
    ok(vqa(&data, &init, &one, 8, 3)
        .args(no_dropout)
        .output()
        .unwrap());
    ok(vqa(&data, &init, &sim, 4, 3)
        .args(no_dropout)
        .args(["--set", "train.simulate_ranks=2"])
        .output()
        .unwrap());
    ok(launched(2, vqa(&data, &init, &two, 4, 3).args(no_dropout))
        .output()
        .unwrap());
    assert_same_curves(&curve(&one), &curve(&two), &["loss", "grad_norm"], 1e-5);
    assert_same_curves(&curve(&sim), &curve(&two), &["loss", "grad_norm"], 1e-6);
    let gap = parameter_gap(&sim, &two);
    assert!(gap <= 1e-6, "largest relative parameter difference {gap:e}");
    // and they trained: the parameters moved from --init
    let start = tch::Tensor::read_safetensors(&init).unwrap();
    let trained = weights(&two);
    let moved = start.iter().any(|(n, t0)| {
        trained
            .iter()
            .find(|(m, _)| m == n)
            .is_some_and(|(_, t)| !t.equal(t0))
    });
    assert!(moved, "no parameter changed");
}

/// Pre-training (ITC with queues of gathered features, ITM, MLM, PrefixLM, momentum model, dropout
/// on): two ranks equal one process simulating both — same per-rank seeds, the queue filled with
/// both ranks' momentum features in rank order, one momentum update per micro-step.
#[test]
fn two_ranks_pretrain_as_one_process_running_both_ranks_micro_batches() {
    let t = tempfile::tempdir().unwrap();
    let data = synth_coco_dataset(t.path(), 24, 5);
    let run = |out: &Path, extra: &[&str]| {
        let mut c = mplug();
        c.current_dir(crate::common::repo())
            .env("OMP_NUM_THREADS", SAME_THREADS)
            .args(["train", "--quiet", "--device", "cpu", "--config"])
            .arg("configs/pretrain_tiny.yaml")
            .arg("--data")
            .arg(&data)
            .arg("--out")
            .arg(out);
        for kv in [
            "train.max_steps=4",
            "train.checkpoint_every=4",
            "batch_size=4",
            "queue_size=16",
            "train.threads=2",
        ] {
            c.args(["--set", kv]);
        }
        c.args(extra);
        c
    };
    let (sim, two) = (t.path().join("sim"), t.path().join("two"));
    ok(run(&sim, &["--set", "train.simulate_ranks=2"])
        .output()
        .unwrap());
    ok(launched(2, &mut run(&two, &[])).output().unwrap());
    let keys = [
        "loss",
        "grad_norm",
        "loss_itc",
        "loss_itm",
        "loss_mlm",
        "loss_prefix",
    ];
    assert_same_curves(&curve(&sim), &curve(&two), &keys, 1e-6);
    let gap = parameter_gap(&sim, &two);
    assert!(gap <= 1e-6, "largest relative parameter difference {gap:e}");
    // the queues hold both ranks' features: equal, and filled past the initial −100 indices
    let state = |run: &Path| {
        let latest = std::fs::read_to_string(run.join("latest")).unwrap();
        let mut s =
            tch::Tensor::read_safetensors(run.join(latest.trim()).join("optimizer.safetensors"))
                .unwrap();
        s.retain(|(n, _)| n.ends_with("queue") || n == "queue_ptr");
        s.sort_by(|a, b| a.0.cmp(&b.0));
        s
    };
    let (qs, qt) = (state(&sim), state(&two));
    assert_eq!(qs.len(), 4);
    for ((n, a), (_, b)) in qs.iter().zip(&qt) {
        let gap = (a.to_kind(tch::Kind::Double) - b.to_kind(tch::Kind::Double))
            .abs()
            .max()
            .double_value(&[]);
        assert!(gap <= 1e-6, "`{n}` differs by {gap:e}");
    }
    let idx = qt.iter().find(|(n, _)| n == "idx_queue").unwrap();
    // 4 steps × 2 ranks × 4 samples = 32 entries: the queue of 16 wrapped and holds no −100
    assert_eq!(idx.1.lt(0).sum(tch::Kind::Int64).int64_value(&[]), 0);
}

/// `mplug finetune --resume RUN` (RUN follows) up to `step`.
fn resume_args(step: &str) -> [&str; 7] {
    [
        "finetune",
        "--quiet",
        "--device",
        "cpu",
        "--stop-at-step",
        step,
        "--resume",
    ]
}

#[test]
fn a_killed_rank_ends_the_job_and_its_checkpoint_resumes_on_two_ranks_and_on_one() {
    let t = tempfile::tempdir().unwrap();
    let data = synth_vqa(t.path());
    let init = init(t.path());
    // uninterrupted: 2 ranks, 4 steps
    let straight = t.path().join("straight");
    ok(launched(2, &mut vqa(&data, &init, &straight, 4, 4))
        .output()
        .unwrap());
    // the same job, rank 1 killed (SIGKILL) once the step-2 checkpoint exists
    let run = t.path().join("run");
    let port = {
        let l = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        l.local_addr().unwrap().port()
    };
    let job = vqa(&data, &init, &run, 4, 400);
    let spawn = |rank: usize| {
        let mut c = Command::new(BIN);
        c.args(job.get_args())
            .current_dir(crate::common::repo())
            .env("RANK", rank.to_string())
            .env("WORLD_SIZE", "2")
            .env("MASTER_ADDR", "127.0.0.1")
            .env("MASTER_PORT", port.to_string())
            .env("MPLUG_DIST_TIMEOUT", "60")
            .env("OMP_NUM_THREADS", SAME_THREADS)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c.spawn().unwrap()
    };
    let rank0 = spawn(0);
    let mut rank1 = spawn(1);
    let deadline = Instant::now() + Duration::from_secs(300);
    while !run.join("latest").exists() {
        assert!(Instant::now() < deadline, "no checkpoint after 300 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    rank1.kill().unwrap();
    let _ = rank1.wait();
    let killed = Instant::now();
    let out = rank0.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "rank 0 went on alone");
    assert!(
        killed.elapsed() < Duration::from_secs(90),
        "rank 0 took {:?} to stop",
        killed.elapsed()
    );
    assert!(stderr.contains("failed on rank 0 of 2"), "{stderr}");
    // on 2 ranks the resumed job reaches step 4 with the uninterrupted run's metrics and weights,
    // bit for bit (max_steps only ends a run: the schedule is the config's epochs)
    ok(launch(2).args(resume_args("4")).arg(&run).output().unwrap());
    assert_eq!(curve(&run), curve(&straight));
    for ((n, a), (m, b)) in weights(&straight).iter().zip(&weights(&run)) {
        assert_eq!(n, m);
        assert!(a.equal(b), "`{n}` differs after the resume");
    }
    // on 1 rank: continues from the latest checkpoint
    ok(mplug().args(resume_args("6")).arg(&run).output().unwrap());
    let last = curve(&run);
    assert_eq!(last.last().unwrap()["step"], 6);
}

/// `mplug eval` on two ranks writes the files of the one-process run: VQA (items dealt to the
/// ranks, 7 questions so the ranks hold 4 and 3, gathered back in item order) and retrieval (every
/// rank encodes everything, the ITM rows are sharded and the score matrices summed).
#[test]
fn eval_on_two_ranks_writes_the_one_process_results() {
    let t = tempfile::tempdir().unwrap();
    let vqa = synth_vqa(t.path());
    let weights = init(t.path());
    let coco = synth_coco_dataset(t.path(), 12, 4);
    let eval = |task: &str, data: &Path, out: &Path, extra: &[&str]| {
        let mut c = mplug();
        c.current_dir(crate::common::repo())
            .env("OMP_NUM_THREADS", SAME_THREADS)
            .args(["eval", task, "--quiet", "--device", "cpu", "--config"])
            .arg(format!("configs/{task}_tiny.yaml"))
            .arg("--weights")
            .arg(&weights)
            .arg("--data")
            .arg(data)
            .arg("--out")
            .arg(out)
            .arg("--vocab")
            .arg(crate::common::vocab())
            .args(extra);
        c
    };
    let read = |p: &Path| std::fs::read_to_string(p).unwrap();
    let vqa_args = ["--split", "val", "--limit", "7", "--save-tokens"];
    let (one, two) = (t.path().join("vqa1"), t.path().join("vqa2"));
    ok(eval("vqa", &vqa, &one, &vqa_args).output().unwrap());
    ok(launched(2, &mut eval("vqa", &vqa, &two, &vqa_args))
        .output()
        .unwrap());
    for f in [
        "results.json",
        "questions.json",
        "annotations.json",
        "tokens.json",
    ] {
        assert_eq!(read(&one.join(f)), read(&two.join(f)), "{f}");
    }
    let results: serde_json::Value =
        serde_json::from_str(&read(&two.join("results.json"))).unwrap();
    assert_eq!(results.as_array().unwrap().len(), 7);
    let metrics = |d: &Path| {
        let v: serde_json::Value = serde_json::from_str(&read(&d.join("metrics.json"))).unwrap();
        v
    };
    assert_eq!(metrics(&one)["vqa"], metrics(&two)["vqa"]);
    let ret_args = ["--split", "train", "--k-test", "8", "--save-scores"];
    let (one, two) = (t.path().join("ret1"), t.path().join("ret2"));
    ok(eval("retrieval", &coco, &one, &ret_args).output().unwrap());
    ok(launched(2, &mut eval("retrieval", &coco, &two, &ret_args))
        .output()
        .unwrap());
    let (m1, m2) = (metrics(&one), metrics(&two));
    for key in ["txt_r1", "img_r1", "r_mean"] {
        assert!(m1["retrieval"][key].is_number(), "{m1}");
    }
    assert_eq!(m1["retrieval"], m2["retrieval"]);
    let scores = |d: &Path| {
        std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
            .flat_map(|p| tch::Tensor::read_safetensors(p).unwrap())
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let (s1, s2) = (scores(&one), scores(&two));
    assert!(!s1.is_empty());
    assert_eq!(s1.keys().collect::<Vec<_>>(), s2.keys().collect::<Vec<_>>());
    for (n, a) in &s1 {
        assert!(a.equal(&s2[n]), "score matrix `{n}` differs");
    }
}

/// The config's `dist:` section reaches the process group: `dist.backend: nccl` on CPU stops the
/// rank before any step, naming the key; `MPLUG_DIST_BACKEND=gloo` overrides it and the run trains.
#[test]
fn the_dist_section_chooses_the_backend_and_the_environment_overrides_it() {
    let t = tempfile::tempdir().unwrap();
    let data = synth_vqa(t.path());
    let init = init(t.path());
    let (bad, good) = (t.path().join("bad"), t.path().join("good"));
    let nccl = ["--set", "dist.backend=nccl"];
    let out = launched(1, vqa(&data, &init, &bad, 4, 1).args(nccl))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("dist.backend: nccl needs --device cuda"),
        "{err}"
    );
    assert!(!bad.join("latest").exists());
    ok(launched(1, vqa(&data, &init, &good, 4, 1).args(nccl))
        .env("MPLUG_DIST_BACKEND", "gloo")
        .output()
        .unwrap());
    assert!(good.join("latest").exists());
}
