//! Model configuration with the original key spelling.
//!
//! Two files, as in the original release: a YAML (`configs/mplug_base.yaml`, keys of
//! `configs/pretrain_mplug_base.yaml`: `bert_config`, `clip_name`, `vision_width`, `image_res`, …) naming a
//! BERT JSON (`config_bert.json` / `config_bert_stride3.json`: `hidden_size`, `stride_layer`,
//! `text_encoder_layers`, …). Parsing is two-step: the raw files become a validated [`MplugConfig`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// The BERT side (`config_bert*.json`), every key the original files carry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BertConfig {
    /// Width of every BERT module (768).
    pub hidden_size: i64,
    /// Heads per attention (12, head dim 64).
    pub num_attention_heads: i64,
    /// FFN width (3072).
    pub intermediate_size: i64,
    /// Layers the fusion model instantiates (12); only the last `fusion_layers` run.
    pub num_hidden_layers: i64,
    /// LayerNorm epsilon of BERT modules (1e-12).
    pub layer_norm_eps: f64,
    /// Standard deviation of BERT's N(0, σ) initialisation of linears and embeddings (0.02;
    /// `BertPreTrainedModel._init_weights`). Matters only when training from scratch.
    #[serde(default = "default_initializer_range")]
    pub initializer_range: f64,
    /// Dropout after dense layers and embeddings (0.1).
    pub hidden_dropout_prob: f64,
    /// Dropout on attention probabilities (0.1).
    pub attention_probs_dropout_prob: f64,
    /// Learned absolute positions (512).
    pub max_position_embeddings: i64,
    /// Token types (2; always 0 in practice).
    pub type_vocab_size: i64,
    /// bert-base-uncased vocabulary size (30522).
    pub vocab_size: i64,
    /// In-features of cross-attention keys/values (768).
    pub encoder_width: i64,
    /// Text-encoder depth (6).
    pub text_encoder_layers: i64,
    /// Fusion layers that run (6).
    pub fusion_layers: i64,
    /// Decoder depth (12).
    pub text_decode_layers: i64,
    /// Connected-attention period of the fusion (3 for base, 6 for large).
    pub stride_layer: i64,
    /// Only "gelu" (exact erf GELU) is used by the original.
    #[serde(default = "default_act")]
    pub hidden_act: String,
    /// Keys of the original files that change nothing here (`architectures`, `model_type`,
    /// `pad_token_id`, `add_cross_attention`, `use_cache`,
    /// `gradient_checkpointing`) and anything unknown.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

fn default_act() -> String {
    "gelu".into()
}

fn default_initializer_range() -> f64 {
    0.02
}

/// Keys of `config_bert.json` that we read but that do not change the computation.
const BERT_KEYS_WITHOUT_EFFECT: &[&str] = &[
    "architectures",
    "model_type",
    "pad_token_id",
    "add_cross_attention",
    "use_cache",
    "gradient_checkpointing",
];

/// The CLIP visual tower.
#[derive(Debug, Clone, PartialEq)]
pub struct VisionConfig {
    /// `ViT-B-16`, `ViT-L-14` or `tiny`.
    pub clip_name: String,
    /// Transformer width (768 / 1024).
    pub width: i64,
    /// Residual blocks (12 / 24).
    pub layers: i64,
    /// Heads (width / 64 for CLIP).
    pub heads: i64,
    /// Patch size = conv1 kernel = stride (16 / 14).
    pub patch_size: i64,
    /// Input resolution; sets the positional table length (res/patch)² + 1.
    pub image_res: i64,
    /// Training dropout on the attention probabilities of every block and after the ViT-L bridge:
    /// the reference's 0.1 (a QUIRK of its CLIP copy, §1.2); `vision_dropout` in the YAML.
    pub dropout: f64,
}

impl VisionConfig {
    /// Patches per side.
    pub fn grid(&self) -> i64 {
        self.image_res / self.patch_size
    }

    /// Visual tokens per image, CLS included.
    pub fn num_positions(&self) -> i64 {
        self.grid() * self.grid() + 1
    }
}

/// The reference's dropout in its CLIP copy's attention and after the ViT-L bridge (§1.2).
pub const REFERENCE_VISION_DROPOUT: f64 = 0.1;

/// A validated mPLUG configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct MplugConfig {
    /// The visual tower.
    pub vision: VisionConfig,
    /// The BERT side.
    pub bert: BertConfig,
    /// ITC projection width (256).
    pub embed_dim: i64,
    /// ITC temperature at init (0.07).
    pub temp: f64,
}

/// The model's keys of the YAML file as written (original key names).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawYaml {
    bert_config: Option<String>,
    clip_name: Option<String>,
    vision_width: Option<i64>,
    image_res: Option<i64>,
    embed_dim: Option<i64>,
    temp: Option<f64>,
    // mplug extensions for non-CLIP towers (`clip_name: tiny`)
    vision_layers: Option<i64>,
    vision_heads: Option<i64>,
    vision_patch_size: Option<i64>,
    vision_dropout: Option<f64>,
}

/// The top-level keys that belong to the model ([`RawYaml`]'s fields); a training or task YAML
/// holds them beside its own.
pub(crate) const MODEL_KEYS: &[&str] = &[
    "bert_config",
    "clip_name",
    "vision_width",
    "image_res",
    "embed_dim",
    "temp",
    "vision_layers",
    "vision_heads",
    "vision_patch_size",
    "vision_dropout",
];

/// Splits a YAML mapping's top-level keys into the model's ([`MODEL_KEYS`]) and the rest.
pub(crate) fn split_model_keys(
    tree: serde_yaml_ng::Mapping,
) -> (serde_yaml_ng::Mapping, serde_yaml_ng::Mapping) {
    tree.into_iter()
        .partition(|(k, _)| k.as_str().is_some_and(|k| MODEL_KEYS.contains(&k)))
}

/// Keys of the original task/pretrain YAMLs that belong to data, training or evaluation, not to the
/// model: accepted here without a warning (the trainer reads them).
const YAML_KEYS_OF_OTHER_PARTS: &[&str] = &[
    "train_file",
    "val_file",
    "test_file",
    "image_root",
    "vqa_root",
    "vg_root",
    "gqa_root",
    "coco_root",
    "answer_list",
    "label_file",
    "read_local_data",
    "batch_size",
    "batch_size_train",
    "batch_size_test",
    "k_test",
    "queue_size",
    "momentum",
    "alpha",
    "distill",
    "warm_up",
    "optimizer",
    "schedular",
    "text_encoder",
    "text_decoder",
    "mlm_probability",
    "ita_task",
    "itm_task",
    "mlm_task",
    "prefix_task",
    "mid_cross",
    "concat_last_layer",
    "merge_attention",
    "max_length",
    "beam_size",
    "min_length",
    "use_checkpoint",
    "clip_path",
    "num_frames",
    "video_root",
    "prompt",
    "eos",
    "bos",
    "data_root",
    "split_root",
    "dataset",
    "max_query_len",
    "aug_crop",
    "aug_scale",
    "aug_translate",
    "aug_blur",
    "image_res_train",
    "train",
];

impl MplugConfig {
    /// Reads a YAML config and the BERT JSON it names. Unknown keys are returned as warnings.
    pub fn from_yaml(path: &Path) -> Result<(Self, Vec<String>)> {
        let text = fs_err::read_to_string(path)?;
        Self::from_yaml_str(&text, path)
    }

    /// As [`MplugConfig::from_yaml`] on YAML text; `path` names it in messages and is where
    /// `bert_config` is resolved from.
    pub fn from_yaml_str(text: &str, path: &Path) -> Result<(Self, Vec<String>)> {
        let tree: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(text).map_err(|e| yaml_error("model config", path, e))?;
        let tree = match tree {
            serde_yaml_ng::Value::Mapping(m) => m,
            serde_yaml_ng::Value::Null => serde_yaml_ng::Mapping::new(),
            _ => {
                return Err(Error::input(format!(
                    "`{}` is not a YAML mapping",
                    path.display()
                )));
            }
        };
        let (model, other) = split_model_keys(tree);
        let mut warnings = Vec::new();
        for key in other.keys() {
            let key = key.as_str().unwrap_or("?");
            if !YAML_KEYS_OF_OTHER_PARTS.contains(&key) {
                warnings.push(format!(
                    "unknown key `{key}` in `{}` ignored",
                    path.display()
                ));
            }
        }
        let (cfg, mut more) = Self::from_model_keys(model, path, text)?;
        warnings.append(&mut more);
        Ok((cfg, warnings))
    }

    /// The model from its keys ([`split_model_keys`]) of the YAML `text` at `path`, and the BERT
    /// JSON they name; returns the BERT parser's warnings.
    pub(crate) fn from_model_keys(
        model: serde_yaml_ng::Mapping,
        path: &Path,
        text: &str,
    ) -> Result<(Self, Vec<String>)> {
        let raw: RawYaml = from_tree(
            "model config",
            path,
            text,
            serde_yaml_ng::Value::Mapping(model),
        )?;
        let bert_rel = raw.bert_config.clone().ok_or_else(|| {
            Error::input_with_hint(
                format!("`{}` has no `bert_config` key", path.display()),
                "add e.g. `bert_config: 'configs/config_bert_stride3.json'`",
            )
        })?;
        let bert_path = resolve_beside(path, &bert_rel)?;
        let (bert, warnings) = BertConfig::from_json(&bert_path)?;
        let cfg = Self::from_parts(raw, bert, path)?;
        Ok((cfg, warnings))
    }

    fn from_parts(raw: RawYaml, bert: BertConfig, path: &Path) -> Result<Self> {
        let name = raw.clip_name.unwrap_or_else(|| "ViT-B-16".into());
        let bad = |m: String| Error::input(format!("`{}`: {m}", path.display()));
        let (width, layers, patch) = match name.as_str() {
            "ViT-B-16" => (768, 12, 16),
            "ViT-L-14" => (1024, 24, 14),
            "tiny" => (
                raw.vision_width
                    .ok_or_else(|| bad("clip_name `tiny` needs vision_width".into()))?,
                raw.vision_layers
                    .ok_or_else(|| bad("clip_name `tiny` needs vision_layers".into()))?,
                raw.vision_patch_size
                    .ok_or_else(|| bad("clip_name `tiny` needs vision_patch_size".into()))?,
            ),
            other => {
                return Err(Error::input_with_hint(
                    format!("`{}`: unknown clip_name `{other}`", path.display()),
                    "use `ViT-B-16`, `ViT-L-14` or `tiny`",
                ));
            }
        };
        if let Some(w) = raw.vision_width
            && w != width
        {
            return Err(bad(format!(
                "vision_width {w} does not match {name} (width {width})"
            )));
        }
        let heads = raw.vision_heads.unwrap_or(width / 64);
        let vision = VisionConfig {
            clip_name: name,
            width,
            layers,
            heads,
            patch_size: patch,
            image_res: raw.image_res.unwrap_or(224),
            dropout: raw.vision_dropout.unwrap_or(REFERENCE_VISION_DROPOUT),
        };
        let cfg = MplugConfig {
            vision,
            bert,
            embed_dim: raw.embed_dim.unwrap_or(256),
            temp: raw.temp.unwrap_or(0.07),
        };
        cfg.validate().map_err(bad)?;
        Ok(cfg)
    }

    /// Checks the shapes fit together.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let v = &self.vision;
        let b = &self.bert;
        if v.width <= 0 || v.layers <= 0 || v.heads <= 0 || v.width % v.heads != 0 {
            return Err(format!(
                "vision width {} must be a positive multiple of heads {}",
                v.width, v.heads
            ));
        }
        if !(0.0..1.0).contains(&v.dropout) {
            return Err(format!("vision_dropout {} must be in [0, 1)", v.dropout));
        }
        if v.patch_size <= 0 || v.image_res < v.patch_size || v.image_res % v.patch_size != 0 {
            return Err(format!(
                "image_res {} must be a multiple of the patch size {}",
                v.image_res, v.patch_size
            ));
        }
        if b.hidden_size % b.num_attention_heads != 0 {
            return Err(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                b.hidden_size, b.num_attention_heads
            ));
        }
        if b.encoder_width != b.hidden_size {
            return Err(format!(
                "encoder_width {} must equal hidden_size {} (the visual bridge maps to hidden_size)",
                b.encoder_width, b.hidden_size
            ));
        }
        if b.fusion_layers <= 0 || b.fusion_layers > b.num_hidden_layers {
            return Err(format!(
                "fusion_layers {} must be in 1..={} (num_hidden_layers)",
                b.fusion_layers, b.num_hidden_layers
            ));
        }
        if b.stride_layer <= 0 {
            return Err(format!("stride_layer {} must be positive", b.stride_layer));
        }
        if b.hidden_act != "gelu" {
            return Err(format!(
                "hidden_act `{}` is not supported (the original uses `gelu`)",
                b.hidden_act
            ));
        }
        Ok(())
    }

    /// The released base model (pretraining resolution 256).
    pub fn base() -> Self {
        Self::preset("ViT-B-16", 768, 12, 16, 256, 3)
    }

    /// The released large model (pretraining resolution 224).
    pub fn large() -> Self {
        Self::preset("ViT-L-14", 1024, 24, 14, 224, 6)
    }

    fn preset(name: &str, width: i64, layers: i64, patch: i64, res: i64, stride: i64) -> Self {
        MplugConfig {
            vision: VisionConfig {
                clip_name: name.into(),
                width,
                layers,
                heads: width / 64,
                patch_size: patch,
                image_res: res,
                dropout: REFERENCE_VISION_DROPOUT,
            },
            bert: BertConfig {
                hidden_size: 768,
                num_attention_heads: 12,
                intermediate_size: 3072,
                num_hidden_layers: 12,
                layer_norm_eps: 1e-12,
                initializer_range: 0.02,
                hidden_dropout_prob: 0.1,
                attention_probs_dropout_prob: 0.1,
                max_position_embeddings: 512,
                type_vocab_size: 2,
                vocab_size: 30522,
                encoder_width: 768,
                text_encoder_layers: 6,
                fusion_layers: 6,
                text_decode_layers: 12,
                stride_layer: stride,
                hidden_act: "gelu".into(),
                other: BTreeMap::new(),
            },
            embed_dim: 256,
            temp: 0.07,
        }
    }

    /// Whether the 1024→768 style bridge (`visn_fc`, `visn_layer_norm`) exists.
    pub fn has_visual_bridge(&self) -> bool {
        self.vision.width != self.bert.hidden_size
    }

    /// Index of the first fusion layer that runs (`num_hidden_layers − fusion_layers`, 6 for the
    /// released models). Parameter names keep the original indices `start..num_hidden_layers`.
    pub fn fusion_start_layer(&self) -> i64 {
        self.bert.num_hidden_layers - self.bert.fusion_layers
    }
}

impl BertConfig {
    /// Reads `config_bert*.json`; unknown keys are returned as warnings.
    pub fn from_json(path: &Path) -> Result<(Self, Vec<String>)> {
        let text = fs_err::read_to_string(path)?;
        let cfg: BertConfig = serde_json::from_str(&text).map_err(|e| {
            let position = format!("line {}, column {}", e.line(), e.column());
            Error::config("BERT config", path, Some(position), e)
        })?;
        let warnings = cfg
            .other
            .keys()
            .filter(|k| !BERT_KEYS_WITHOUT_EFFECT.contains(&k.as_str()))
            .map(|k| format!("unknown key `{k}` in `{}` ignored", path.display()))
            .collect();
        Ok((cfg, warnings))
    }
}

/// A YAML syntax or type error in `path`, with its line and column.
pub(crate) fn yaml_error(kind: &'static str, path: &Path, e: serde_yaml_ng::Error) -> Error {
    let position = e
        .location()
        .map(|l| format!("line {}, column {}", l.line(), l.column()));
    Error::config(kind, path, position, e)
}

/// Deserializes a parsed YAML tree; an error names the key's path (`train.seed`) and the line of
/// its top-level key in `text` (a tree has no positions of its own).
pub(crate) fn from_tree<T: serde::de::DeserializeOwned>(
    kind: &'static str,
    path: &Path,
    text: &str,
    tree: serde_yaml_ng::Value,
) -> Result<T> {
    serde_path_to_error::deserialize(tree).map_err(|e| {
        let key = e.path().to_string();
        let top = key.split(['.', '[']).next().unwrap_or_default();
        let line = text.lines().position(|l| {
            l.split_once(':')
                .is_some_and(|(k, _)| !k.starts_with([' ', '\t']) && k.trim() == top)
        });
        let position = match (key.as_str(), line) {
            ("" | ".", _) => None,
            (_, Some(i)) => Some(format!("`{key}` (line {})", i + 1)),
            (_, None) => Some(format!("`{key}`")),
        };
        Error::config(kind, path, position, e.into_inner())
    })
}

/// Resolves a path written in a config: as given (relative to the working directory, like the
/// original scripts), else beside the config file, else by file name beside the config file.
pub(crate) fn resolve_beside(config: &Path, written: &str) -> Result<PathBuf> {
    let as_given = PathBuf::from(written);
    let dir = config.parent().unwrap_or(Path::new("."));
    let mut candidates = vec![as_given.clone(), dir.join(&as_given)];
    if let Some(name) = as_given.file_name() {
        candidates.push(dir.join(name));
    }
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            Error::input_with_hint(
                format!(
                    "bert_config `{written}` named by `{}` was not found",
                    config.display()
                ),
                "the path is tried as given, then beside the YAML file",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(p: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
    }

    #[test]
    fn shipped_configs_equal_presets() {
        let (base, w) = MplugConfig::from_yaml(&repo("configs/mplug_base.yaml")).unwrap();
        assert!(w.is_empty(), "{w:?}");
        let mut want = MplugConfig::base();
        want.bert.other = base.bert.other.clone();
        assert_eq!(base, want);
        let (large, _) = MplugConfig::from_yaml(&repo("configs/mplug_large.yaml")).unwrap();
        let mut want = MplugConfig::large();
        want.bert.other = large.bert.other.clone();
        assert_eq!(large, want);
        assert!(large.has_visual_bridge() && !base.has_visual_bridge());
        assert_eq!(base.fusion_start_layer(), 6);
        assert_eq!(base.vision.num_positions(), 257);
        assert_eq!(large.vision.num_positions(), 257);
    }

    #[test]
    fn tiny_config_parses() {
        let (tiny, w) = MplugConfig::from_yaml(&repo("configs/tiny.yaml")).unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(tiny.vision.heads, 2);
        assert_eq!(tiny.vision.num_positions(), 17);
        assert!(tiny.has_visual_bridge());
        assert_eq!(tiny.fusion_start_layer(), 2);
    }

    #[test]
    fn unknown_keys_warn_and_bad_values_fail() {
        let dir = tempfile::tempdir().unwrap();
        let bert = repo("configs/config_bert_tiny.json");
        let y = dir.path().join("m.yaml");
        let tiny = |rest: &str| {
            format!(
                "bert_config: '{}'\nclip_name: tiny\nvision_width: 64\nvision_layers: 1\n\
                 vision_patch_size: 8\n{rest}",
                bert.display()
            )
        };
        fs_err::write(&y, tiny("image_res: 32\nbatch_size: 3\nfancy_key: 1\n")).unwrap();
        let (_, w) = MplugConfig::from_yaml(&y).unwrap();
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("fancy_key"));
        fs_err::write(&y, tiny("image_res: 30\n")).unwrap();
        let err = MplugConfig::from_yaml(&y).unwrap_err().to_string();
        assert!(err.contains("multiple of the patch size"), "{err}");
        fs_err::write(&y, tiny("image_res: 32\nvision_dropout: 0.0\n")).unwrap();
        assert_eq!(MplugConfig::from_yaml(&y).unwrap().0.vision.dropout, 0.0);
        fs_err::write(&y, tiny("image_res: 32\nvision_dropout: 1.5\n")).unwrap();
        let err = MplugConfig::from_yaml(&y).unwrap_err().to_string();
        assert!(err.contains("vision_dropout"), "{err}");
        fs_err::write(&y, "clip_name: ViT-B-16\n").unwrap();
        assert!(
            MplugConfig::from_yaml(&y)
                .unwrap_err()
                .to_string()
                .contains("bert_config")
        );
    }
}
