//! Reading annotation JSON with errors that name the file and the position.

use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};

/// Parses `bytes` as JSON; syntax errors name `path`, line and column.
pub fn parse_json(path: &Path, bytes: &[u8]) -> Result<Value> {
    serde_json::from_slice(bytes).map_err(|e| Error::Annotation {
        path: path.to_path_buf(),
        position: format!("line {}, column {}", e.line(), e.column()),
        message: e
            .to_string()
            .split(" at line ")
            .next()
            .unwrap_or_default()
            .to_string(),
    })
}

/// A structure error at a JSON path (`$.images`).
pub fn structure_error(path: &Path, json_path: &str, message: impl Into<String>) -> Error {
    Error::Annotation {
        path: path.to_path_buf(),
        position: json_path.to_string(),
        message: message.into(),
    }
}

/// An id field (int or string) as a string; `None` for other types.
pub fn id_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A short description of a JSON value's type, for reject reasons.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
