//! The dataflow engine: a source's items go through a parallel stage and come out **in input order**.
//!
//! ```text
//!  reader thread ──bounded──▶ rayon workers (stage) ──bounded──▶ reorder ──▶ sink (ShardWriter)
//!        ▲                                                                       │
//!        └──────────────────────── credits (max items in flight) ◀───────────────┘
//! ```
//!
//! The credit channel bounds the number of items anywhere in the pipeline (and so memory), even when
//! one slow item holds back the reorder buffer. Order comes from sequence numbers, so the output is the
//! same for any thread count. A panic inside the stage is caught and handed to the sink as an error
//! value for that item, so one bad input cannot take down a long run.

pub mod cpu_time;
pub mod progress;

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crossbeam_channel::bounded;
use rayon::iter::{ParallelBridge, ParallelIterator};

use crate::error::{Error, Result};

/// How the engine runs.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Worker threads for the stage.
    pub threads: usize,
    /// Maximum items in flight (read but not yet consumed by the sink).
    pub max_in_flight: usize,
}

impl EngineOptions {
    /// `threads` workers with a window of 4 items per worker (at least 8).
    pub fn with_threads(threads: usize) -> Self {
        let threads = threads.max(1);
        Self {
            threads,
            max_in_flight: (threads * 4).max(8),
        }
    }
}

/// The message of a caught panic payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_string())
}

/// A stage panicked on an item; the message is kept.
#[derive(Debug, Clone)]
pub struct StagePanic(pub String);

/// Runs `stage` over `items` on `options.threads` workers and feeds the results to `sink` in input
/// order, with the item's index. Stops at the first error the sink returns.
pub fn run_ordered<T, O, I, F, S>(
    options: &EngineOptions,
    items: I,
    stage: F,
    mut sink: S,
) -> Result<()>
where
    T: Send,
    O: Send,
    I: IntoIterator<Item = T>,
    I::IntoIter: Send,
    F: Fn(T) -> O + Sync,
    S: FnMut(u64, std::result::Result<O, StagePanic>) -> Result<()>,
{
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.threads)
        .thread_name(|i| format!("mplug-stage-{i}"))
        .build()
        .map_err(|e| Error::internal_caused("cannot start worker pool", e))?;
    let window = options.max_in_flight.max(1);
    let (credit_tx, credit_rx) = bounded::<()>(window);
    for _ in 0..window {
        let _ = credit_tx.send(());
    }
    let (in_tx, in_rx) = bounded::<(u64, T)>(window);
    let (out_tx, out_rx) = bounded::<(u64, std::result::Result<O, StagePanic>)>(window);
    let items = items.into_iter();

    std::thread::scope(|scope| {
        scope.spawn(move || {
            for (seq, item) in items.enumerate() {
                // Wait for a free slot; stop when the consumer has gone away.
                if credit_rx.recv().is_err() || in_tx.send((seq as u64, item)).is_err() {
                    return;
                }
            }
        });
        let stage = &stage;
        let pool = &pool;
        scope.spawn(move || {
            pool.install(|| {
                in_rx
                    .into_iter()
                    .par_bridge()
                    .for_each_with(out_tx, |out, (seq, item)| {
                        let result = catch_unwind(AssertUnwindSafe(|| stage(item)))
                            .map_err(|p| StagePanic(panic_message(p.as_ref())));
                        let _ = out.send((seq, result));
                    });
            });
        });

        // Owning the channel ends here means they are dropped when consuming stops, early or not,
        // which is what releases the reader and the workers.
        consume_in_order(out_rx, credit_tx, &mut sink)
    })
}

fn consume_in_order<O, S>(
    out_rx: crossbeam_channel::Receiver<(u64, std::result::Result<O, StagePanic>)>,
    credit_tx: crossbeam_channel::Sender<()>,
    sink: &mut S,
) -> Result<()>
where
    S: FnMut(u64, std::result::Result<O, StagePanic>) -> Result<()>,
{
    let mut next = 0u64;
    let mut pending = BTreeMap::new();
    for (seq, result) in out_rx.iter() {
        pending.insert(seq, result);
        while let Some(result) = pending.remove(&next) {
            sink(next, result)?;
            next += 1;
            let _ = credit_tx.send(());
        }
    }
    if !pending.is_empty() {
        return Err(Error::internal(format!(
            "engine lost item {next} ({} results stranded)",
            pending.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_in_input_order_for_any_thread_count() {
        for threads in [1, 2, 5] {
            let mut seen = Vec::new();
            let opts = EngineOptions::with_threads(threads);
            run_ordered(
                &opts,
                0..200u64,
                |x| {
                    // uneven work so completion order differs from input order
                    std::thread::sleep(std::time::Duration::from_micros((x * 37) % 300));
                    x * 2
                },
                |seq, r| {
                    seen.push((seq, r.map_err(|e| Error::internal(e.0))?));
                    Ok(())
                },
            )
            .unwrap();
            let expected: Vec<(u64, u64)> = (0..200).map(|x| (x, x * 2)).collect();
            assert_eq!(seen, expected, "threads = {threads}");
        }
    }

    #[test]
    fn a_panicking_item_is_reported_and_the_rest_continue() {
        let mut ok = 0;
        let mut panics = Vec::new();
        run_ordered(
            &EngineOptions::with_threads(2),
            0..20u32,
            |x| {
                if x == 7 {
                    panic!("boom at {x}");
                }
                x
            },
            |seq, r| {
                match r {
                    Ok(_) => ok += 1,
                    Err(p) => panics.push((seq, p.0)),
                }
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(ok, 19);
        assert_eq!(panics, vec![(7, "boom at 7".to_string())]);
    }

    #[test]
    fn a_sink_error_stops_the_run_without_hanging() {
        let r = run_ordered(
            &EngineOptions::with_threads(2),
            0..1_000_000u64,
            |x| x,
            |seq, _| {
                if seq == 10 {
                    Err(Error::input("stop"))
                } else {
                    Ok(())
                }
            },
        );
        assert!(matches!(r, Err(Error::Input { .. })));
    }

    #[test]
    fn items_in_flight_never_exceed_the_window() {
        use std::sync::atomic::{AtomicI64, Ordering};
        let in_flight = AtomicI64::new(0);
        let max_seen = AtomicI64::new(0);
        let opts = EngineOptions {
            threads: 2,
            max_in_flight: 6,
        };
        run_ordered(
            &opts,
            (0..300).inspect(|_| {
                let n = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                max_seen.fetch_max(n, Ordering::SeqCst);
            }),
            |x| x,
            |_, _| {
                in_flight.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            },
        )
        .unwrap();
        assert!(
            max_seen.load(Ordering::SeqCst) <= 7,
            "max in flight {}",
            max_seen.load(Ordering::SeqCst)
        );
    }
}
