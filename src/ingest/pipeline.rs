//! Declarative pipeline files (`pipelines/*.toml`): which source reader, which schema, and the settings
//! of every stage. A new dataset is a source reader plus one of these files.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::shards::ShardWriterOptions;
use crate::stages::ImageOptions;
use crate::text::TextNormalization;

/// Built-in pipeline files, embedded so the binary works from any directory.
pub const BUILTIN_PIPELINES: &[(&str, &str)] = &[
    ("coco", include_str!("../../pipelines/coco.toml")),
    ("cc3m", include_str!("../../pipelines/cc3m.toml")),
    ("cc12m", include_str!("../../pipelines/cc12m.toml")),
    ("sbu", include_str!("../../pipelines/sbu.toml")),
    ("vg", include_str!("../../pipelines/vg.toml")),
    ("vg-qa", include_str!("../../pipelines/vg-qa.toml")),
    ("flickr30k", include_str!("../../pipelines/flickr30k.toml")),
    ("vqa", include_str!("../../pipelines/vqa.toml")),
    ("refcoco", include_str!("../../pipelines/refcoco.toml")),
    ("nlvr2", include_str!("../../pipelines/nlvr2.toml")),
    ("snli-ve", include_str!("../../pipelines/snli-ve.toml")),
    ("msrvtt", include_str!("../../pipelines/msrvtt.toml")),
    ("msrvtt-qa", include_str!("../../pipelines/msrvtt-qa.toml")),
    ("msvd-qa", include_str!("../../pipelines/msvd-qa.toml")),
    ("vatex", include_str!("../../pipelines/vatex.toml")),
];

/// Text settings (the `[text]` table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextOptions {
    /// Normalisation applied before tokenising.
    pub normalize: TextNormalization,
    /// Word limit of `pre_caption` (0 = none).
    pub max_words: usize,
    /// Normalisation of questions (video QA; the reference feeds them raw: `none`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub question_normalize: Option<TextNormalization>,
}

/// A parsed pipeline file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSpec {
    /// Pipeline name (also the default dataset name).
    pub name: String,
    /// Source reader (`coco`).
    pub source: String,
    /// Row schema id (`image_text.v1`).
    pub schema: String,
    /// Image stage settings (image datasets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageOptions>,
    /// Video stage settings (video datasets).
    #[cfg(feature = "video")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<crate::video::stage::VideoOptions>,
    /// Text stage settings.
    pub text: TextOptions,
    /// Shard writer settings.
    pub shards: ShardWriterOptions,
}

impl PipelineSpec {
    /// Parses TOML text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| {
            Error::config("pipeline file", origin, None, e)
                .with_hint("compare with the built-in pipelines/coco.toml")
        })
    }

    /// Loads a pipeline file from disk.
    pub fn load(path: &Path) -> Result<Self> {
        let text = fs_err::read_to_string(path)?;
        Self::parse(&text, &path.display().to_string())
    }

    /// A built-in pipeline by name.
    pub fn builtin(name: &str) -> Result<Self> {
        let (_, text) = BUILTIN_PIPELINES
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| {
                let names: Vec<&str> = BUILTIN_PIPELINES.iter().map(|(n, _)| *n).collect();
                Error::input_with_hint(
                    format!("no built-in pipeline named `{name}`"),
                    format!("the built-in pipelines are: {}", names.join(", ")),
                )
            })?;
        Self::parse(text, &format!("pipelines/{name}.toml"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_coco_pipeline_parses() {
        let p = PipelineSpec::builtin("coco").unwrap();
        assert_eq!(p.source, "coco");
        assert_eq!(p.image.as_ref().map(|i| i.max_side), Some(512));
        assert_eq!(p.text.normalize, TextNormalization::PreCaption);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let text =
            include_str!("../../pipelines/coco.toml").replace("max_side = 512", "max_sid = 512");
        let err = PipelineSpec::parse(&text, "x.toml").unwrap_err();
        assert_eq!(err.to_string(), "invalid pipeline file `x.toml`");
        let cause = std::error::Error::source(&err).unwrap().to_string();
        assert!(cause.contains("max_sid"), "{cause}");
        assert!(err.hint().unwrap().contains("coco.toml"));
    }
}
