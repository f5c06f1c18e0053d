//! Reading annotation JSON with errors that name the file and the position.

use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};

/// serde_json's message without its own ` at line L column C` suffix: the position is the error's
/// own field, and for a JSON-lines file serde's line (always 1) is not the file's.
fn serde_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// Parses `bytes` as JSON; syntax errors name `path`, line and column.
pub fn parse_json(path: &Path, bytes: &[u8]) -> Result<Value> {
    serde_json::from_slice(bytes).map_err(|e| Error::Annotation {
        path: path.to_path_buf(),
        position: format!("line {}, column {}", e.line(), e.column()),
        message: serde_message(&e),
    })
}

/// Parses one line of a JSON-lines file; `line` is its 1-based number in the file.
pub fn parse_json_line(path: &Path, line: usize, text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| Error::Annotation {
        path: path.to_path_buf(),
        position: format!("line {line}, column {}", e.column()),
        message: serde_message(&e),
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

/// An id field (int or string) as a string; `None` for other types. Only integers serde_json holds
/// exactly (i64/u64) are ids: a number it could only read as a float (a fraction, or an integer
/// beyond 64 bits) is not, since two such ids can round to the same value and collide.
pub fn id_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
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

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_exact_integers_or_strings() {
        let v: super::Value =
            serde_json::from_str("[9007199254740993, 18446744073709551615, 36893488147419103232, 36893488147419103233, 1.5, -7, \"x\"]")
                .unwrap();
        let ids: Vec<Option<String>> = v.as_array().unwrap().iter().map(super::id_string).collect();
        let s = |x: &str| Some(x.to_string());
        // 2^53 + 1 and u64::MAX stay exact; 2^65 and 2^65 + 1 (floats to serde_json, equal there)
        // and fractions are not ids.
        assert_eq!(
            ids,
            vec![
                s("9007199254740993"),
                s("18446744073709551615"),
                None,
                None,
                None,
                s("-7"),
                s("x")
            ]
        );
    }

    #[test]
    fn a_json_lines_error_states_its_position_once() {
        let err = super::parse_json_line(std::path::Path::new("dev.jsonl"), 3, "{\"a\": }")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "Failed to parse `dev.jsonl` at line 3, column 7: expected value"
        );
    }
}
