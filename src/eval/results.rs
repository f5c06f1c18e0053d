//! Reading result and annotation files for scoring: JSON with errors that name the file.

use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::sources::json::id_string;

/// An input error naming `path`.
pub fn bad(path: &Path, message: impl Into<String>) -> Error {
    Error::input(format!("`{}`: {}", path.display(), message.into()))
}

/// The `annotations` list of an annotation file; `kind` names the expected file in the error.
pub fn read_annotation_list(path: &Path, kind: &str) -> Result<Vec<Value>> {
    match read_json(path)?.get_mut("annotations").map(Value::take) {
        Some(Value::Array(list)) => Ok(list),
        _ => Err(bad(
            path,
            format!("no `annotations` list (is this a {kind} file?)"),
        )),
    }
}

/// A results file `[{<id_key>: int, <text_key>: str}, …]` as `(id, text)` pairs in file order.
pub fn read_id_text_list(
    path: &Path,
    id_key: &str,
    text_key: &str,
) -> Result<Vec<(String, String)>> {
    let root = read_json(path)?;
    let list = root
        .as_array()
        .ok_or_else(|| bad(path, format!("expected a list of {{{id_key}, {text_key}}}")))?;
    list.iter()
        .enumerate()
        .map(|(i, r)| {
            let id = r
                .get(id_key)
                .and_then(id_string)
                .ok_or_else(|| bad(path, format!("[{i}] has no integer `{id_key}`")))?;
            let text = r
                .get(text_key)
                .and_then(Value::as_str)
                .ok_or_else(|| bad(path, format!("[{i}] has no text `{text_key}`")))?;
            Ok((id, text.to_string()))
        })
        .collect()
}

/// Parses a JSON file; an unreadable or malformed file is an input error naming it.
pub fn read_json(path: &Path) -> Result<Value> {
    let bytes = crate::sources::files::read_regular_file(path)
        .map_err(|e| Error::input_caused(format!("cannot read `{}`", path.display()), e))?;
    crate::sources::json::parse_json(path, &bytes)
}

/// Up to five ids for a message, then how many more.
pub fn id_list_preview(ids: &[&str]) -> String {
    let shown: Vec<&str> = ids.iter().take(5).copied().collect();
    let more = ids.len().saturating_sub(shown.len());
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}
