//! Loading and saving weights with the original state-dict names, and the reference's load-time
//! transformations (reference §6.3): `model`/`module` unwrapping (in [`crate::pickle::torch`]), the
//! pretrained-checkpoint renames, `resize_pos_embed`, plus the allow-list of keys the original stores
//! but never runs.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use tch::nn::VarStore;
use tch::{Kind, Tensor};

use super::config::MplugConfig;
use crate::error::{Error, Result};

pub use crate::pickle::torch::NamedTensors;

/// Why a checkpoint key is ignored, or `None` if the model should have it.
pub fn known_unused_reason(key: &str, cfg: &MplugConfig) -> Option<&'static str> {
    let first = key.split('.').next().unwrap_or("");
    if first.ends_with("_m") {
        return Some("momentum copy (training state)");
    }
    if matches!(
        first,
        "image_queue" | "text_queue" | "idx_queue" | "queue_ptr"
    ) {
        return Some("ITC queue (training state)");
    }
    if matches!(first, "prefix_ids" | "target_ids" | "bbox_prob_mask") {
        return Some("grounding buffer");
    }
    if key.starts_with("visual_encoder.") && !key.starts_with("visual_encoder.visual.") {
        return Some("CLIP text tower (never run)");
    }
    if key == "visual_encoder.visual.proj" {
        return Some("CLIP projection (skip_last_layer=True)");
    }
    if key.starts_with("fusion_encoder.embeddings.") {
        return Some("fusion embeddings (never run)");
    }
    if let Some(rest) = key.strip_prefix("fusion_encoder.encoder.layer.") {
        let idx: Option<i64> = rest.split('.').next().and_then(|s| s.parse().ok());
        if idx.is_some_and(|i| i < cfg.fusion_start_layer()) {
            return Some("fusion layer before start_layer (never run)");
        }
    }
    if key.ends_with(".position_ids") {
        return Some("buffer (recomputed)");
    }
    if key == "text_decoder.cls.predictions.decoder.weight"
        || key == "text_decoder.cls.predictions.decoder.bias"
    {
        return Some("tied alias of word_embeddings / predictions.bias");
    }
    if key.starts_with("text_decoder.bert.pooler.") || key.starts_with("text_encoder.pooler.") {
        return Some("BERT pooler (not built by the original)");
    }
    None
}

/// The reference's rename for *pretrained* checkpoints: for keys containing `fusion` or `bert` but not
/// `decode`, delete the substrings `fusion.` and `bert.`.
pub fn rename_pretrained_key(key: &str) -> String {
    if (key.contains("fusion") || key.contains("bert")) && !key.contains("decode") {
        key.replace("fusion.", "").replace("bert.", "")
    } else {
        key.to_string()
    }
}

/// Whether a state dict has the pretrained layout (`text_encoder.bert.…`, `fusion_encoder.fusion.…`).
pub fn is_pretrained_layout<'a>(mut keys: impl Iterator<Item = &'a str>) -> bool {
    keys.any(|k| k.starts_with("text_encoder.bert.") || k.starts_with("fusion_encoder.fusion."))
}

/// `models/vit.py resize_pos_embed`: keep row 0 (CLS), reshape the rest to a gs×gs grid (row-major),
/// bilinear-resize (align_corners=False, no antialias) to the grid of `rows − 1`, flatten back.
pub fn resize_pos_embed(table: &Tensor, rows: i64) -> Result<Tensor> {
    let (old_rows, dim) = table.size2().map_err(Error::from)?;
    let side = |n: i64| {
        let s = ((n - 1) as f64).sqrt().round() as i64;
        (s * s == n - 1).then_some(s)
    };
    let (Some(gs_old), Some(gs_new)) = (side(old_rows), side(rows)) else {
        return Err(Error::format(format!(
            "cannot resize a positional table of {old_rows} rows to {rows}: both must be 1 + a square"
        )));
    };
    let kind = table.kind();
    let t = table.to_kind(Kind::Float);
    let cls = t.narrow(0, 0, 1);
    let grid = t
        .narrow(0, 1, old_rows - 1)
        .reshape([1, gs_old, gs_old, dim])
        .permute([0, 3, 1, 2]);
    let resized = grid
        .upsample_bilinear2d([gs_new, gs_new], false, None, None)
        .permute([0, 2, 3, 1])
        .reshape([gs_new * gs_new, dim]);
    Ok(Tensor::cat(&[cls, resized], 0).to_kind(kind))
}

/// What a load did, reported like the reference's `load_state_dict` (missing/unexpected) plus the
/// keys ignored on purpose and the transformations applied.
#[derive(Debug, Default, Clone)]
pub struct LoadReport {
    /// Parameters copied.
    pub loaded: usize,
    /// Model parameters absent from the checkpoint (they keep their initialisation).
    pub missing: Vec<String>,
    /// Checkpoint keys the model does not have and that are not known-unused.
    pub unexpected: Vec<String>,
    /// Known-unused keys, grouped by reason, with counts.
    pub ignored: BTreeMap<&'static str, usize>,
    /// Keys renamed by the pretrained rule.
    pub renamed: usize,
    /// Positional tables resized: (key, old rows, new rows).
    pub resized: Vec<(String, i64, i64)>,
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "loaded {} tensors", self.loaded)?;
        if self.renamed > 0 {
            writeln!(
                f,
                "renamed {} pretrained keys (`bert.`/`fusion.` removed)",
                self.renamed
            )?;
        }
        for (k, a, b) in &self.resized {
            writeln!(f, "resized {k}: {a} → {b} rows (bilinear)")?;
        }
        for (reason, n) in &self.ignored {
            writeln!(f, "ignored {n} keys: {reason}")?;
        }
        for (label, keys) in [("missing", &self.missing), ("unexpected", &self.unexpected)] {
            if !keys.is_empty() {
                writeln!(f, "{label} keys ({}):", keys.len())?;
                for k in keys {
                    writeln!(f, "  {k}")?;
                }
            }
        }
        Ok(())
    }
}

/// How strict a load is.
#[derive(Debug, Default, Clone, Copy)]
pub struct LoadOptions {
    /// Keep the initialisation of parameters the checkpoint lacks (the reference's `strict=False`).
    pub allow_missing: bool,
    /// Ignore checkpoint keys the model does not know.
    pub allow_unexpected: bool,
}

/// Applies the load-time transformations and copies the tensors into `vs`.
pub fn load_state_dict(
    vs: &VarStore,
    tensors: Vec<(String, Tensor)>,
    cfg: &MplugConfig,
    opts: LoadOptions,
) -> Result<LoadReport> {
    let mut report = LoadReport::default();
    let pretrained = is_pretrained_layout(tensors.iter().map(|(k, _)| k.as_str()));
    let vars = vs.variables();
    let mut seen: HashSet<String> = HashSet::new();
    let mut mismatched = Vec::new();
    for (key, src) in tensors {
        let key = if pretrained {
            let new = rename_pretrained_key(&key);
            report.renamed += usize::from(new != key);
            new
        } else {
            key
        };
        let Some(dst) = vars.get(&key) else {
            match known_unused_reason(&key, cfg) {
                Some(reason) => *report.ignored.entry(reason).or_default() += 1,
                None => report.unexpected.push(key),
            }
            continue;
        };
        let mut src = src;
        if key == "visual_encoder.visual.positional_embedding" && src.size() != dst.size() {
            let (old, new) = (src.size()[0], dst.size()[0]);
            src = resize_pos_embed(&src, new)?;
            report.resized.push((key.clone(), old, new));
        }
        if src.size() != dst.size() {
            mismatched.push(format!(
                "{key}: checkpoint {:?}, model {:?}",
                src.size(),
                dst.size()
            ));
            continue;
        }
        let mut dst = dst.shallow_clone();
        tch::no_grad(|| dst.f_copy_(&src.to_kind(dst.kind()).to_device(dst.device())))?;
        report.loaded += 1;
        seen.insert(key);
    }
    report.missing = vars
        .keys()
        .filter(|k| !seen.contains(*k))
        .cloned()
        .collect();
    report.missing.sort();
    report.unexpected.sort();
    if !mismatched.is_empty() {
        // In checkpoint order: the first names the part of the config that differs.
        return Err(Error::input_with_hint(
            format!(
                "the weights do not fit this model config: first mismatching key {} \
                 ({} tensors differ in shape):\n  {}",
                mismatched[0],
                mismatched.len(),
                mismatched.join("\n  ")
            ),
            "pass the --config (and image_res) the weights were made with",
        ));
    }
    if !report.missing.is_empty() && !opts.allow_missing {
        return Err(Error::input_with_hint(
            format!(
                "checkpoint lacks {} model parameters:\n{report}",
                report.missing.len()
            ),
            "pass --allow-missing to keep their initialisation (the original's strict=False)",
        ));
    }
    if !report.unexpected.is_empty() && !opts.allow_unexpected {
        return Err(Error::input_with_hint(
            format!(
                "checkpoint has {} unknown keys:\n{report}",
                report.unexpected.len()
            ),
            "pass --allow-unexpected to ignore them",
        ));
    }
    Ok(report)
}

/// Reads weights by extension: `.safetensors`, else a PyTorch zip checkpoint (`.pth`, `.pt`, `.bin`).
/// Returns the tensors and the non-tensor entries skipped.
pub fn read_weights(path: &Path) -> Result<(NamedTensors, Vec<String>)> {
    if !path.is_file() {
        return Err(Error::input(format!(
            "weights `{}` not found",
            path.display()
        )));
    }
    if path.extension().and_then(|e| e.to_str()) == Some("safetensors") {
        let t = Tensor::read_safetensors(path).map_err(|e| {
            Error::format(format!(
                "`{}` is not a safetensors file: {e}",
                path.display()
            ))
        })?;
        return Ok((t, Vec::new()));
    }
    crate::pickle::torch::TorchCheckpoint::open(path)?.state_dict()
}

/// Writes named tensors to `path` as safetensors, atomically (temp file + rename).
pub fn write_safetensors(path: &Path, tensors: &[(String, Tensor)]) -> Result<()> {
    let mut sorted: Vec<(&str, Tensor)> = tensors
        .iter()
        .map(|(k, t)| (k.as_str(), t.contiguous()))
        .collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let tmp = path.with_extension("safetensors.tmp");
    Tensor::write_safetensors(&sorted, &tmp)?;
    fs_err::rename(&tmp, path)?;
    Ok(())
}

/// Every variable of `vs`, sorted by name.
pub fn named_variables(vs: &VarStore) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretrained_renames() {
        assert_eq!(
            rename_pretrained_key("text_encoder.bert.encoder.layer.0.attention.self.query.weight"),
            "text_encoder.encoder.layer.0.attention.self.query.weight"
        );
        assert_eq!(
            rename_pretrained_key("fusion_encoder.fusion.encoder.layer.6.output.dense.bias"),
            "fusion_encoder.encoder.layer.6.output.dense.bias"
        );
        // `decode` keys keep `bert.`
        assert_eq!(
            rename_pretrained_key("text_decoder.bert.embeddings.word_embeddings.weight"),
            "text_decoder.bert.embeddings.word_embeddings.weight"
        );
        assert_eq!(
            rename_pretrained_key("visual_encoder.visual.conv1.weight"),
            "visual_encoder.visual.conv1.weight"
        );
    }

    /// 2×2 grid → 4×4 with align_corners=False: output pixel centres sit at (i + 0.5)/2 − 0.5 in
    /// input coordinates, clamped at 0: rows/cols map to [0, 0.25, 0.75, 1]. Values by hand from the
    /// grid [[0, 1], [2, 3]] (value = 2·y + x).
    #[test]
    fn resize_pos_embed_by_hand() {
        let table = Tensor::from_slice(&[9.0f32, 0.0, 1.0, 2.0, 3.0]).reshape([5, 1]);
        let out = resize_pos_embed(&table, 17).unwrap();
        let got = Vec::<f32>::try_from(out.reshape([17])).unwrap();
        assert_eq!(got[0], 9.0, "CLS row kept");
        let coord = [0.0f32, 0.25, 0.75, 1.0];
        for (y, cy) in coord.iter().enumerate() {
            for (x, cx) in coord.iter().enumerate() {
                let want = 2.0 * cy + cx;
                assert!((got[1 + y * 4 + x] - want).abs() < 1e-6, "{y},{x}: {got:?}");
            }
        }
        assert!(resize_pos_embed(&table, 11).is_err()); // 10 = 1 + 3² is valid, 11 is not
    }

    #[test]
    fn unused_allow_list() {
        let cfg = MplugConfig::base();
        let yes = [
            "visual_encoder.transformer.resblocks.0.attn.in_proj_weight",
            "visual_encoder.token_embedding.weight",
            "visual_encoder.visual.proj",
            "fusion_encoder.encoder.layer.5.attention.self.query.weight",
            "fusion_encoder.embeddings.word_embeddings.weight",
            "visual_encoder_m.visual.conv1.weight",
            "text_encoder.embeddings.position_ids",
            "image_queue",
            "text_decoder.cls.predictions.decoder.weight",
        ];
        for k in yes {
            assert!(known_unused_reason(k, &cfg).is_some(), "{k}");
        }
        for k in [
            "fusion_encoder.encoder.layer.6.attention.self.query.weight",
            "visual_encoder.visual.conv1.weight",
            "text_decoder.cls.predictions.bias",
            "temp",
        ] {
            assert!(known_unused_reason(k, &cfg).is_none(), "{k}");
        }
    }
}
