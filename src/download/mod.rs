//! Downloading URL datasets (SBU, CC3M, CC12M): bounded concurrency, timeouts, retries with
//! backoff, a per-host rate limit, resumable progress and a record of every failure.
//!
//! Flow position: a step *before* `sources`: it fills an image folder ([`store::UrlStore`]) that the
//! URL sources then read like any local folder. Threads, not async: each in-flight request holds
//! one blocking thread, which at the few hundred connections a machine sustains is simpler than an
//! async runtime and costs little next to decoding.

pub mod fetch;
pub mod host_limit;
pub mod store;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Serialize;

use crate::engine::progress;
use crate::error::Result;
use fetch::{FetchError, Fetcher, host_of};
use host_limit::HostRateLimiter;
use store::{DownloadRecord, UrlStore};

/// Download settings.
#[derive(Debug, Clone, Serialize)]
pub struct DownloadOptions {
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Whole-request time limit in seconds.
    pub timeout_s: f64,
    /// Extra attempts after a retryable failure.
    pub retries: u32,
    /// Wait before the first retry in seconds; doubled for each further one.
    pub backoff_s: f64,
    /// Request starts per second per host (0 = unlimited).
    pub per_host_per_second: f64,
    /// Largest accepted body in bytes.
    pub max_bytes: u64,
    /// Try URLs whose last recorded outcome is a failure again (otherwise they stay failed: a rerun
    /// with nothing new to fetch changes nothing, and the dataset stays up to date).
    pub retry_failed: bool,
}

impl Default for DownloadOptions {
    fn default() -> Self {
        DownloadOptions {
            concurrency: 64,
            timeout_s: 10.0,
            retries: 2,
            backoff_s: 1.0,
            per_host_per_second: 10.0,
            max_bytes: 50 << 20,
            retry_failed: false,
        }
    }
}

/// What a download run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DownloadSummary {
    /// Distinct URLs listed.
    pub urls: usize,
    /// Already on disk before this run (not requested).
    pub already_present: usize,
    /// Failed in an earlier run and not tried again (no `retry_failed`).
    pub failed_earlier: usize,
    /// Downloaded in this run.
    pub downloaded: usize,
    /// Failed in this run (recorded in the log).
    pub failed: usize,
    /// Bytes written in this run.
    pub bytes: u64,
}

/// Downloads every URL of `urls` that has no file in `store` yet and, unless
/// [`DownloadOptions::retry_failed`], no recorded failure. Results are appended to the store's log as
/// they finish.
pub fn download_all(
    urls: &[String],
    store: &UrlStore,
    options: &DownloadOptions,
    quiet: bool,
) -> Result<DownloadSummary> {
    let mut seen = HashSet::new();
    let distinct: Vec<&String> = urls.iter().filter(|u| seen.insert(u.as_str())).collect();
    let missing: Vec<&String> = distinct
        .iter()
        .copied()
        .filter(|u| store.find(u).is_none())
        .collect();
    let log = store.read_log()?;
    let failed_before = |u: &str| log.get(u).is_some_and(|r| r.outcome == "failed");
    let todo: Vec<&String> = missing
        .iter()
        .copied()
        .filter(|u| options.retry_failed || !failed_before(u))
        .collect();
    let mut summary = DownloadSummary {
        urls: distinct.len(),
        already_present: distinct.len() - missing.len(),
        failed_earlier: missing.len() - todo.len(),
        ..Default::default()
    };
    if todo.is_empty() {
        return Ok(summary);
    }
    let fetcher = Fetcher::new(
        Duration::from_secs_f64(options.timeout_s.max(0.001)),
        options.max_bytes,
        concat!("mplug/", env!("CARGO_PKG_VERSION"), " (dataset download)"),
    );
    let limiter = HostRateLimiter::new(options.per_host_per_second);
    let mut log = store.log_writer()?;
    let bar = progress::items_bar(todo.len() as u64, "download", quiet);
    let (work_tx, work_rx) = crossbeam_channel::bounded::<&String>(options.concurrency.max(1) * 2);
    let (done_tx, done_rx) = crossbeam_channel::unbounded::<Result<DownloadRecord>>();
    let stop = AtomicBool::new(false);
    let mut first_error = None;
    std::thread::scope(|scope| {
        for _ in 0..options.concurrency.max(1) {
            let work_rx = work_rx.clone();
            let done_tx = done_tx.clone();
            let (fetcher, limiter, stop) = (&fetcher, &limiter, &stop);
            scope.spawn(move || {
                for url in work_rx {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let rec = download_one(url, store, fetcher, limiter, options);
                    if done_tx.send(rec).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done_tx);
        drop(work_rx);
        scope.spawn(move || {
            for url in todo {
                if work_tx.send(url).is_err() {
                    break;
                }
            }
        });
        for rec in done_rx {
            bar.inc(1);
            let rec = match rec {
                Ok(rec) => rec,
                Err(e) => {
                    // A local failure (disk full): stop handing out work, report after the join.
                    stop.store(true, Ordering::Relaxed);
                    first_error.get_or_insert(e);
                    continue;
                }
            };
            if rec.outcome == "ok" {
                summary.downloaded += 1;
                summary.bytes += rec.bytes.unwrap_or(0);
            } else {
                summary.failed += 1;
            }
            if let Err(e) = log.append(&rec) {
                stop.store(true, Ordering::Relaxed);
                first_error.get_or_insert(e);
            }
        }
    });
    bar.finish_and_clear();
    match first_error {
        Some(e) => Err(e),
        None => Ok(summary),
    }
}

/// Fetches one URL with retries; `Err` only for local (disk) failures.
fn download_one(
    url: &str,
    store: &UrlStore,
    fetcher: &Fetcher,
    limiter: &HostRateLimiter,
    options: &DownloadOptions,
) -> Result<DownloadRecord> {
    let host = host_of(url);
    let mut attempts = 0;
    let last: FetchError = loop {
        attempts += 1;
        limiter.wait(&host);
        match fetcher.fetch(url) {
            Ok(f) => {
                let file = store.save(url, f.extension, &f.bytes)?;
                return Ok(DownloadRecord {
                    url: url.to_string(),
                    outcome: "ok".to_string(),
                    file: Some(file),
                    bytes: Some(f.bytes.len() as u64),
                    reason: None,
                    http_status: None,
                    attempts,
                });
            }
            Err(e) if e.retryable() && attempts <= options.retries => {
                let wait = options.backoff_s * 2f64.powi(attempts as i32 - 1);
                std::thread::sleep(Duration::from_secs_f64(wait.max(0.0)));
            }
            Err(e) => break e,
        }
    };
    Ok(DownloadRecord {
        url: url.to_string(),
        outcome: "failed".to_string(),
        file: None,
        bytes: None,
        reason: Some(format!(
            "download failed after {attempts} attempt(s): {last}"
        )),
        http_status: last.http_status(),
        attempts,
    })
}
