//! MSVD-QA: `{train,val,test}_qa.json` (`[{answer, id, question, video_id: int}]`, as MSRVTT-QA) and
//! `youtube_mapping.txt` (`<youtube clip name> vid<n>` per line), which names each clip's file
//! (`<youtube clip name>.avi`). Clip ids are `vid<n>`.

use std::collections::HashMap;
use std::path::Path;

use super::coco::split_from_file_name;
use super::json::parse_json;
use super::msrvtt::read_qa_list;
use super::video::{VideoCollector, VideoIndex};
use crate::error::{Error, Result};

/// Parses `youtube_mapping.txt` into `vid<n>` → clip name.
pub fn parse_mapping(path: &Path, bytes: &[u8]) -> Result<HashMap<String, String>> {
    let mut map = HashMap::new();
    for (n, line) in String::from_utf8_lossy(bytes).lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let mut parts = line.split_whitespace();
        match (parts.next(), parts.next(), parts.next()) {
            (Some(name), Some(vid), None) => {
                map.insert(vid.to_string(), name.to_string());
            }
            _ => {
                return Err(Error::Annotation {
                    path: path.to_path_buf(),
                    position: format!("line {}", n + 1),
                    message: format!("expected `<clip name> vid<n>`, found `{line}`"),
                });
            }
        }
    }
    Ok(map)
}

/// Adds one MSVD-QA file's records to `c`.
pub fn read_msvd_file(
    path: &Path,
    bytes: &[u8],
    mapping: &HashMap<String, String>,
    index: &VideoIndex,
    c: &mut VideoCollector,
    split_override: Option<&str>,
) -> Result<()> {
    let value = parse_json(path, bytes)?;
    let split = split_override
        .map(str::to_string)
        .unwrap_or_else(|| split_from_file_name(path));
    read_qa_list(
        path,
        &value,
        index,
        c,
        &split,
        |n| format!("vid{n}"),
        |clip| {
            mapping
                .get(clip)
                .cloned()
                .unwrap_or_else(|| clip.to_string())
        },
    )
}
