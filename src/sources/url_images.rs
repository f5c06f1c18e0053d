//! Finding a URL dataset's images on disk: mplug's own download folder (keyed by URL hash, see
//! [`crate::download::store`]) or an img2dataset output folder (`00000/000000123.jpg` with a
//! `000000123.json` sidecar holding `"url"`), plus the download log's failure reasons for the URLs
//! that have no file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::download::store::{DownloadRecord, EXTENSIONS, UrlStore};
use crate::error::Result;

/// Where a URL's image is, or why it is not there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlImage {
    /// Relative path under the image folder.
    Found(String),
    /// The download log says it failed, with this reason.
    Failed(String),
    /// Neither a file nor a log record.
    Missing,
}

/// URL → local image lookup over one image folder.
#[derive(Debug)]
pub struct UrlImageIndex {
    store: UrlStore,
    img2dataset: HashMap<String, String>,
    log: HashMap<String, DownloadRecord>,
}

impl UrlImageIndex {
    /// Indexes `root`: reads `downloads.jsonl` and every img2dataset `*.json` sidecar.
    pub fn open(root: &Path) -> Result<Self> {
        let store = UrlStore::open(root)?;
        let log = store.read_log()?;
        let mut img2dataset = HashMap::new();
        let mut sidecars = Vec::new();
        collect_sidecars(root, &mut sidecars)?;
        sidecars.sort(); // walk order differs between file systems; first-listed wins, deterministically
        for json in sidecars {
            let Ok(bytes) = std::fs::read(&json) else {
                continue;
            };
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
                continue;
            };
            let Some(url) = v.get("url").and_then(|u| u.as_str()) else {
                continue;
            };
            let image = EXTENSIONS
                .iter()
                .map(|ext| json.with_extension(ext))
                .find(|p| p.is_file());
            if let Some(image) = image
                && let Ok(rel) = image.strip_prefix(root)
            {
                let rel = rel.to_string_lossy().replace('\\', "/");
                img2dataset.entry(url.to_string()).or_insert(rel);
            }
        }
        Ok(UrlImageIndex {
            store,
            img2dataset,
            log,
        })
    }

    /// Looks `url` up: our hash layout first, then img2dataset sidecars, then the failure log.
    pub fn lookup(&self, url: &str) -> UrlImage {
        if let Some(rel) = self.store.find(url) {
            return UrlImage::Found(rel);
        }
        if let Some(rel) = self.img2dataset.get(url) {
            return UrlImage::Found(rel.clone());
        }
        match self.log.get(url) {
            Some(rec) if rec.outcome == "failed" => UrlImage::Failed(
                rec.reason
                    .clone()
                    .unwrap_or_else(|| "download failed".to_string()),
            ),
            _ => UrlImage::Missing,
        }
    }
}

/// Every `*.json` file under `dir` (img2dataset puts them in numbered sub-folders).
fn collect_sidecars(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in fs_err::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let ft = entry.file_type()?;
        if ft.is_dir() {
            collect_sidecars(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
    Ok(())
}
