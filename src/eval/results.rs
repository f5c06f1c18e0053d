//! Reading result and annotation files for scoring: JSON with errors that name the file.

use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};

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
