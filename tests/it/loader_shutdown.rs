//! Loader shutdown, alone in its own test process (other tests' loader threads would blur the count):
//! 1000 create/drop cycles, some mid-epoch with batches waiting, leave no thread behind.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use mplug::loader::index::{DatasetIndex, DatasetInput};
use mplug::loader::{Loader, LoaderConfig, LoaderState, recv_timeout};

fn thread_count() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .expect("read /proc/self/status")
        .lines()
        .find_map(|l| {
            l.strip_prefix("Threads:")
                .map(|v| v.trim().parse().expect("a number"))
        })
        .expect("a Threads: line")
}

#[test]
fn create_and_drop_1000_times_leaves_no_threads() {
    if !crate::common::in_own_process(
        "loader_shutdown::create_and_drop_1000_times_leaves_no_threads",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = crate::common::synth_coco_dataset(dir.path(), 30, 5);
    let idx = Arc::new(
        DatasetIndex::open(&[DatasetInput {
            path: data,
            weight: 1.0,
        }])
        .unwrap(),
    );
    let excluded = Arc::new(HashSet::new());
    let config = LoaderConfig {
        seed: 1,
        batch_size: 4,
        image_size: 32,
        threads: 2,
        prefetch: 2,
        shuffle_window: 2,
        epochs: 2,
        ..LoaderConfig::default()
    };
    let state = LoaderState {
        seed: 1,
        epoch: 0,
        position: 0,
    };
    // Warm up (the first run may start process-wide pools), then count.
    drop(Loader::start(idx.clone(), excluded.clone(), config.clone(), state).unwrap());
    let before = thread_count();
    for i in 0..1000 {
        let mut l = Loader::start(idx.clone(), excluded.clone(), config.clone(), state).unwrap();
        if i % 3 == 0 {
            let _ = recv_timeout(&mut l, Duration::from_secs(60))
                .unwrap()
                .unwrap();
        }
        drop(l);
    }
    // A dropped rayon pool's threads exit asynchronously after the join of our own threads: give
    // the last few a moment. A leak would leave hundreds behind after 1000 cycles.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while thread_count() > before && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        thread_count() <= before,
        "threads grew from {before} to {}",
        thread_count()
    );
}
