//! Where downloaded images live and what happened to each URL.
//!
//! Layout under the image folder: `<h[0..2]>/<h>.<ext>` with `h` = the first 32 hex digits of the
//! URL's blake3 (spreads a few million files over 256 directories), plus `downloads.jsonl`, one
//! line per finished URL (success or failure, the last line wins). A file is renamed into place
//! before its log line is written, so after `kill -9` a file without a log line is still a success
//! and a half-written file is only ever a `.part` that the next run overwrites.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Result;

/// The log file's name.
pub const DOWNLOAD_LOG: &str = "downloads.jsonl";

/// Image extensions a stored file may have (what [`super::fetch::Fetched`] produces).
pub const EXTENSIONS: [&str; 6] = ["jpg", "png", "webp", "gif", "bmp", "tiff"];

/// The URL key: 32 hex digits of blake3(url).
pub fn url_key(url: &str) -> String {
    blake3::hash(url.as_bytes()).to_hex()[..32].to_string()
}

/// The path of `url`'s file relative to the store root, for a given extension.
pub fn relative_path(url: &str, extension: &str) -> String {
    let key = url_key(url);
    format!("{}/{key}.{extension}", &key[..2])
}

/// One finished URL in `downloads.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownloadRecord {
    /// The URL as listed.
    pub url: String,
    /// `ok` or `failed`.
    pub outcome: String,
    /// Relative path of the stored file (ok only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Bytes stored (ok only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Why it failed (failed only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// HTTP status of the last failed attempt, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// Attempts made in the run that wrote this line.
    pub attempts: u32,
}

/// A folder of downloaded images keyed by URL hash.
#[derive(Debug, Clone)]
pub struct UrlStore {
    root: PathBuf,
}

impl UrlStore {
    /// Opens (creating) the folder.
    pub fn open(root: &Path) -> Result<Self> {
        fs_err::create_dir_all(root)?;
        Ok(UrlStore {
            root: root.to_path_buf(),
        })
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The stored file of `url` (relative path), if any.
    pub fn find(&self, url: &str) -> Option<String> {
        EXTENSIONS
            .iter()
            .map(|ext| relative_path(url, ext))
            .find(|rel| self.root.join(rel).is_file())
    }

    /// Writes `bytes` for `url` atomically (`.part` file, fsync, rename); returns the relative path.
    pub fn save(&self, url: &str, extension: &str, bytes: &[u8]) -> Result<String> {
        let rel = relative_path(url, extension);
        let path = self.root.join(&rel);
        if let Some(dir) = path.parent() {
            fs_err::create_dir_all(dir)?;
        }
        let part = path.with_extension(format!("{extension}.part"));
        let mut f = fs_err::File::create(&part)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs_err::rename(&part, &path)?;
        Ok(rel)
    }

    /// The last record per URL in the log (a torn last line from a crash is ignored).
    pub fn read_log(&self) -> Result<HashMap<String, DownloadRecord>> {
        let path = self.root.join(DOWNLOAD_LOG);
        let mut out = HashMap::new();
        let Ok(f) = File::open(&path) else {
            return Ok(out);
        };
        for line in BufReader::new(f).lines() {
            let line = line?;
            if let Ok(rec) = serde_json::from_str::<DownloadRecord>(&line) {
                out.insert(rec.url.clone(), rec);
            }
        }
        Ok(out)
    }

    /// Opens the log for appending.
    pub fn log_writer(&self) -> Result<LogWriter> {
        let path = self.root.join(DOWNLOAD_LOG);
        // A crash may have left a torn last line; start ours on a fresh line.
        let needs_newline = std::fs::read(&path)
            .ok()
            .is_some_and(|b| !b.is_empty() && !b.ends_with(b"\n"));
        let mut file = fs_err::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        if needs_newline {
            file.write_all(b"\n")?;
        }
        Ok(LogWriter { file })
    }
}

/// Appends records to `downloads.jsonl`, one flushed line each.
pub struct LogWriter {
    file: fs_err::File,
}

impl LogWriter {
    /// Appends one record.
    pub fn append(&mut self, rec: &DownloadRecord) -> Result<()> {
        let mut line = serde_json::to_vec(rec)
            .map_err(|e| crate::Error::internal_caused("JSON serialisation failed", e))?;
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.file.flush()?;
        Ok(())
    }
}
