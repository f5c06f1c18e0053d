//! VATEX: `vatex_{training,validation}_v1.0.json`, `vatex_public_test_english_v1.1.json`:
//! `[{videoID, enCap: [10 English captions], chCap: [...]}]`; the clip file is `<videoID>.mp4`.
//! Only English captions are kept (the reference captions in English).

use std::path::Path;

use serde_json::Value;

use super::coco::{file_label, split_from_file_name};
use super::json::{parse_json, structure_error, type_name};
use super::video::{VideoCollector, VideoIndex};
use crate::error::Result;
use crate::shards::manifest::RejectUnit;

/// Adds one VATEX file's records to `c`.
pub fn read_vatex_file(
    path: &Path,
    bytes: &[u8],
    index: &VideoIndex,
    c: &mut VideoCollector,
    split_override: Option<&str>,
) -> Result<()> {
    let label = file_label(path);
    let value = parse_json(path, bytes)?;
    let split = split_override
        .map(str::to_string)
        .unwrap_or_else(|| split_from_file_name(path));
    let items = value.as_array().ok_or_else(|| {
        structure_error(
            path,
            "$",
            format!("expected a list, found {}", type_name(&value)),
        )
    })?;
    for (i, item) in items.iter().enumerate() {
        let Some(id) = item["videoID"].as_str() else {
            c.reject(
                &label,
                format!("[{i}]"),
                RejectUnit::Clip,
                "record lacks a string videoID",
            );
            continue;
        };
        let Some(caps) = item["enCap"].as_array() else {
            c.reject(
                &label,
                id,
                RejectUnit::Clip,
                format!("enCap is {}, not a list", type_name(&item["enCap"])),
            );
            continue;
        };
        let mut good = Vec::new();
        for (k, cap) in caps.iter().enumerate() {
            match cap {
                Value::String(s) => good.push(s.clone()),
                other => c.reject(
                    &label,
                    format!("{id}#{k}"),
                    RejectUnit::Caption,
                    format!("caption is {}, not a string", type_name(other)),
                ),
            }
        }
        if let Some(sample) = c.sample(index, &label, id, id, &split) {
            sample.captions.extend(good);
        }
    }
    Ok(())
}
