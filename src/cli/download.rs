//! `mplug download`: fetch a URL dataset's images into a folder keyed by URL hash.

use std::path::PathBuf;

use clap::Args;

use crate::download::store::UrlStore;
use crate::download::{DownloadOptions, DownloadSummary, download_all};
use crate::sources::web::read_web_lists;

/// Network settings shared by `mplug download` and `mplug ingest cc3m|cc12m|sbu --download`.
#[derive(Debug, Args)]
pub struct DownloadFlags {
    /// Requests in flight at once.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub concurrency: usize,
    /// Time limit per request in seconds (connect, redirects and body).
    #[arg(long = "http-timeout", value_name = "S", default_value_t = 10.0)]
    pub timeout: f64,
    /// Extra attempts after a timeout, a dropped connection, 429 or 5xx (never after 404 or a non-image).
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub retries: u32,
    /// Seconds before the first retry; doubled for each further one.
    #[arg(long, value_name = "S", default_value_t = 1.0)]
    pub backoff: f64,
    /// Request starts per second to one host (0 = no limit).
    #[arg(long, value_name = "R", default_value_t = 10.0)]
    pub per_host_rate: f64,
    /// Largest accepted image in bytes (e.g. 50MiB).
    #[arg(long, value_name = "BYTES", value_parser = super::parse_bytes, default_value = "50MiB")]
    pub max_bytes: u64,
    /// Try URLs that failed in an earlier run again (by default their recorded failure stands, so a
    /// rerun with nothing new to fetch changes nothing).
    #[arg(long)]
    pub retry_failed: bool,
}

impl DownloadFlags {
    /// As library options.
    pub fn options(&self) -> DownloadOptions {
        DownloadOptions {
            concurrency: self.concurrency.max(1),
            timeout_s: self.timeout,
            retries: self.retries,
            backoff_s: self.backoff,
            per_host_per_second: self.per_host_rate,
            max_bytes: self.max_bytes,
            retry_failed: self.retry_failed,
        }
    }
}

/// Download the images of URL lists (CC3M, CC12M, SBU) into a folder.
///
/// Each image is stored as IMAGES/<h[0..2]>/<h>.<ext> (h = blake3 of the URL) and every finished URL
/// is appended to IMAGES/downloads.jsonl with its outcome (HTTP status, timeout, not an image, …).
/// The folder is the --images of `mplug ingest cc3m|cc12m|sbu`. Interrupt it at any time (even
/// kill -9): a rerun fetches only URLs that have neither a file nor a recorded failure; pass
/// --retry-failed to try the failures again.
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct DownloadArgs {
    /// URL list files (CC3M/CC12M tsv, SBU json or its urls.txt + captions.txt pair).
    #[arg(long, value_name = "FILE", num_args = 1.., required = true)]
    annotations: Vec<PathBuf>,
    /// The image folder to fill.
    #[arg(long, value_name = "DIR")]
    images: PathBuf,
    #[command(flatten)]
    net: DownloadFlags,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

/// Downloads the URLs of `annotations` into `images` and prints a summary.
pub fn download_lists(
    annotations: &[PathBuf],
    images: &std::path::Path,
    net: &DownloadFlags,
    quiet: bool,
) -> anyhow::Result<DownloadSummary> {
    let lists = read_web_lists(annotations, None)?;
    let urls: Vec<String> = lists.records.into_iter().map(|r| r.url).collect();
    let store = UrlStore::open(images)?;
    let started = std::time::Instant::now();
    let s = download_all(&urls, &store, &net.options(), quiet)?;
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    println!(
        "download  {} urls: {} already present, {} downloaded ({:.1} MiB, {:.1}/s), {} failed (see {})",
        s.urls,
        s.already_present,
        s.downloaded,
        s.bytes as f64 / (1 << 20) as f64,
        s.downloaded as f64 / secs,
        s.failed,
        store
            .root()
            .join(crate::download::store::DOWNLOAD_LOG)
            .display()
    );
    if s.failed_earlier > 0 {
        println!(
            "          {} failed in an earlier run and were not tried again (pass --retry-failed)",
            s.failed_earlier
        );
    }
    Ok(s)
}

pub fn run(args: DownloadArgs) -> anyhow::Result<()> {
    download_lists(&args.annotations, &args.images, &args.net, args.quiet)?;
    Ok(())
}
