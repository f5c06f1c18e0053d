//! `mplug sql --cluster` on a Ballista cluster started by the test on loopback (`mplug ballista
//! scheduler` + two `mplug ballista executor`s): the README's SQL examples — grouping with list
//! functions, `token_count`, a join of two datasets, `hash_split`, the manifest tables — give the
//! same rows as the in-process session; with an executor killed, and then with none left, a query
//! ends in bounded time, with the right rows or a clear error, never a hang.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::mplug;
use crate::sql::fixture;

/// A cluster process, killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(args: &[String], log: &Path) -> Process {
    let log = std::fs::File::create(log).unwrap();
    Process(
        mplug()
            .arg("ballista")
            .args(args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

fn sql(cluster: Option<&str>, query: &str, timeout_s: u32) -> Output {
    let mut c: Command = mplug();
    c.arg("sql").arg("--data").arg(&fixture().root).args([
        "--format",
        "csv",
        "--timeout",
        &timeout_s.to_string(),
    ]);
    if let Some(url) = cluster {
        c.args(["--cluster", url]);
    }
    c.arg(query).output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The README's examples, with an ORDER BY so both engines' rows compare in order (the README's
/// join of coco and vg becomes coco ⋈ coco_official, the fixture's two datasets).
const QUERIES: [&str; 6] = [
    "SELECT split, count(*) AS images, sum(cardinality(captions)) AS captions FROM coco GROUP BY split ORDER BY split",
    "SELECT c FROM (SELECT unnest(captions) AS c FROM coco) t WHERE token_count(c) < 8 ORDER BY c",
    "SELECT a.image_id, b.split FROM coco a JOIN coco_official b ON a.source_path = b.source_path ORDER BY a.image_id, b.split",
    "SELECT image_id FROM coco WHERE hash_split(image_id, 0.1) ORDER BY image_id",
    "SELECT name, images, captions, shards FROM datasets ORDER BY name",
    "SELECT dataset, count(*) AS n, sum(rows) AS r FROM shards GROUP BY dataset ORDER BY dataset",
];

#[test]
fn a_loopback_cluster_answers_as_the_in_process_session_and_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("df://127.0.0.1:{port}");
    let _scheduler = start(
        &[
            "scheduler".into(),
            "--port".into(),
            port.to_string(),
            "--executor-timeout".into(),
            "6".into(),
        ],
        &dir.path().join("scheduler.log"),
    );
    let mut executors: Vec<Option<Process>> = (0..2)
        .map(|i| {
            let work = dir.path().join(format!("work{i}"));
            std::fs::create_dir_all(&work).unwrap();
            Some(start(
                &[
                    "executor".into(),
                    "--scheduler".into(),
                    format!("127.0.0.1:{port}"),
                    "--port".into(),
                    free_port().to_string(),
                    "--grpc-port".into(),
                    free_port().to_string(),
                    "--heartbeat".into(),
                    "2".into(),
                    "--concurrent-tasks".into(),
                    "2".into(),
                    "--work-dir".into(),
                    work.to_string_lossy().into_owned(),
                ],
                &dir.path().join(format!("executor{i}.log")),
            ))
        })
        .collect();
    // the cluster is up when a query runs on it
    let started = Instant::now();
    loop {
        let o = sql(Some(&url), "SELECT count(*) AS n FROM coco", 20);
        if o.status.success() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the cluster never answered: {}",
            text(&o)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    for q in QUERIES {
        let (local, remote) = (sql(None, q, 60), sql(Some(&url), q, 60));
        assert!(local.status.success(), "{q}: {}", text(&local));
        assert!(remote.status.success(), "{q}: {}", text(&remote));
        assert_eq!(
            String::from_utf8_lossy(&remote.stdout),
            String::from_utf8_lossy(&local.stdout),
            "{q}"
        );
        assert!(local.stdout.split(|b| *b == b'\n').count() > 2, "{q}: rows");
    }
    // One executor killed: the query ends within its time limit, with the right rows or an error.
    let want = sql(None, QUERIES[2], 60);
    drop(executors[0].take());
    let t = Instant::now();
    let o = sql(Some(&url), QUERIES[2], 60);
    assert!(t.elapsed() < Duration::from_secs(75), "{}", text(&o));
    if o.status.success() {
        assert_eq!(o.stdout, want.stdout);
    } else {
        assert!(
            !o.stderr.is_empty() && !text(&o).contains("panicked"),
            "{}",
            text(&o)
        );
    }
    // None left: a clear error, in bounded time.
    drop(executors[1].take());
    let t = Instant::now();
    let o = sql(Some(&url), QUERIES[0], 30);
    assert!(t.elapsed() < Duration::from_secs(45), "{}", text(&o));
    assert!(!o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr).to_lowercase();
    assert!(
        !err.contains("panicked") && (err.contains("executor") || err.contains("ran longer than")),
        "{}",
        text(&o)
    );
}
