//! Arrow schemas loaded from `schemas/*.json` (embedded at compile time), so the file in the repository
//! is the schema the writer uses and cannot drift from it.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::Deserialize;

use crate::error::{Error, Result};

/// `schemas/image_text.v1.json`: one row per image with its captions.
pub const IMAGE_TEXT_V1: &str = include_str!("../../schemas/image_text.v1.json");
/// `schemas/image_qa.v1.json`: one row per image with its questions and weighted answers.
pub const IMAGE_QA_V1: &str = include_str!("../../schemas/image_qa.v1.json");
/// `schemas/image_grounding.v1.json`: one row per image with its boxes and referring expressions.
pub const IMAGE_GROUNDING_V1: &str = include_str!("../../schemas/image_grounding.v1.json");
/// `schemas/image_statement.v1.json`: one or two images with labelled statements (NLVR2, SNLI-VE).
pub const IMAGE_STATEMENT_V1: &str = include_str!("../../schemas/image_statement.v1.json");
/// `schemas/video_text.v1.json`: one row per clip with sampled frames, captions and QA pairs.
pub const VIDEO_TEXT_V1: &str = include_str!("../../schemas/video_text.v1.json");

/// Every schema file in `schemas/` that rows are written with.
pub const BUILTIN_SCHEMAS: &[&str] = &[
    IMAGE_TEXT_V1,
    IMAGE_QA_V1,
    IMAGE_GROUNDING_V1,
    IMAGE_STATEMENT_V1,
    VIDEO_TEXT_V1,
];

/// One column of a schema file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    /// Column name.
    pub name: String,
    /// Type: `utf8`, `int32`, `int64`, `binary`, or `list<T>` of those.
    #[serde(rename = "type")]
    pub type_name: String,
    /// Whether nulls are allowed.
    pub nullable: bool,
    /// Whether Parquet min/max statistics are written for the column.
    pub statistics: bool,
    /// Whether Parquet dictionary encoding is used (default: false).
    #[serde(default)]
    pub dictionary: bool,
    /// What the column holds.
    pub doc: String,
}

/// A schema file: name, version and columns.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaSpec {
    /// Schema family name (e.g. `image_text`).
    pub name: String,
    /// Version; bumped on any incompatible change.
    pub version: u32,
    /// What a row is.
    pub description: String,
    /// Columns in order.
    pub fields: Vec<FieldSpec>,
}

impl SchemaSpec {
    /// Parses a schema file's JSON text.
    pub fn parse(json: &str) -> Result<Self> {
        let spec: SchemaSpec = serde_json::from_str(json)
            .map_err(|e| Error::format_caused("invalid schema file", e))?;
        for f in &spec.fields {
            parse_type(&f.type_name)?;
        }
        Ok(spec)
    }

    /// The built-in `image_text.v1` schema.
    pub fn image_text_v1() -> Self {
        match Self::parse(IMAGE_TEXT_V1) {
            Ok(s) => s,
            Err(e) => unreachable!("embedded schema is checked by tests: {e}"),
        }
    }

    /// The built-in `image_grounding.v1` schema.
    pub fn image_grounding_v1() -> Self {
        Self::builtin(IMAGE_GROUNDING_V1)
    }

    /// The built-in `image_statement.v1` schema.
    pub fn image_statement_v1() -> Self {
        Self::builtin(IMAGE_STATEMENT_V1)
    }

    /// The built-in `image_qa.v1` schema.
    pub fn image_qa_v1() -> Self {
        Self::builtin(IMAGE_QA_V1)
    }

    /// The built-in schema with identifier `id` (`image_qa.v1`, …).
    pub fn by_id(id: &str) -> Option<Self> {
        BUILTIN_SCHEMAS
            .iter()
            .map(|json| Self::builtin(json))
            .find(|s| s.id() == id)
    }

    fn builtin(json: &str) -> Self {
        match Self::parse(json) {
            Ok(s) => s,
            Err(e) => unreachable!("embedded schema is checked by tests: {e}"),
        }
    }

    /// The built-in `video_text.v1` schema.
    pub fn video_text_v1() -> Self {
        match Self::parse(VIDEO_TEXT_V1) {
            Ok(s) => s,
            Err(e) => unreachable!("embedded schema is checked by tests: {e}"),
        }
    }

    /// `name.vN`, the identifier stored in manifests and Parquet metadata.
    pub fn id(&self) -> String {
        format!("{}.v{}", self.name, self.version)
    }

    /// The Arrow schema.
    pub fn arrow_schema(&self) -> SchemaRef {
        let fields: Vec<Field> = self
            .fields
            .iter()
            .map(|f| {
                let dt = match parse_type(&f.type_name) {
                    Ok(dt) => dt,
                    Err(e) => unreachable!("types were validated in parse: {e}"),
                };
                Field::new(&f.name, dt, f.nullable)
            })
            .collect();
        Arc::new(Schema::new(fields))
    }
}

/// Parses `utf8 | int32 | int64 | float64 | binary | list<T>` into an Arrow type. List items are nullable, as
/// Arrow's builders produce them.
pub fn parse_type(s: &str) -> Result<DataType> {
    let s = s.trim();
    if let Some(inner) = s.strip_prefix("list<").and_then(|r| r.strip_suffix('>')) {
        return Ok(DataType::List(Arc::new(Field::new(
            "item",
            parse_type(inner)?,
            true,
        ))));
    }
    Ok(match s {
        "utf8" => DataType::Utf8,
        "int32" => DataType::Int32,
        "int64" => DataType::Int64,
        "float64" => DataType::Float64,
        "binary" => DataType::Binary,
        other => {
            return Err(Error::format(format!(
                "unknown column type `{other}` in schema file"
            )));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_schema_parses_with_nested_lists() {
        let spec = SchemaSpec::image_text_v1();
        assert_eq!(spec.id(), "image_text.v1");
        let schema = spec.arrow_schema();
        let tokens = schema
            .field_with_name("caption_tokens")
            .map(|f| f.data_type().clone());
        let expected = DataType::List(Arc::new(Field::new(
            "item",
            DataType::List(Arc::new(Field::new("item", DataType::Int32, true))),
            true,
        )));
        assert_eq!(tokens.ok(), Some(expected));
        assert!(parse_type("float16").is_err());
        let video = SchemaSpec::video_text_v1().arrow_schema();
        assert_eq!(video.fields().len(), 25);
        assert_eq!(
            video
                .field_with_name("fps")
                .map(|f| f.data_type().clone())
                .ok(),
            Some(DataType::Float64)
        );
    }
}
