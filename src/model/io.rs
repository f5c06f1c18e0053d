//! Runs the whole model or one named module on named input tensors and returns every named output:
//! the contract of `mplug forward`, used to check the model against other implementations.

use std::collections::HashMap;

use tch::{Device, Kind, Tensor};

use super::generate::{GenerateConfig, beam_search, greedy};
use super::mplug::MplugModel;
use crate::error::{Error, Result};

/// A module `mplug forward --module` can run, with its inputs and outputs.
pub struct ModuleSpec {
    /// `--module` name.
    pub name: &'static str,
    /// Required input tensors.
    pub inputs: &'static [&'static str],
    /// What it writes.
    pub outputs: &'static str,
}

/// Every runnable module.
pub const MODULES: &[ModuleSpec] = &[
    ModuleSpec {
        name: "mplug",
        inputs: &["image", "input_ids", "attention_mask"],
        outputs: "visual_encoder, image_embeds, text_embeds, fusion_visual, fusion_text, image_feat, \
                  text_feat, itm_logits, mlm_logits, memory, memory_mask, and decoder_logits when \
                  decoder_input_ids/decoder_attention_mask are given",
    },
    ModuleSpec {
        name: "visual_encoder",
        inputs: &["image"],
        outputs: "visual_encoder (ViT output), image_embeds (after the bridge)",
    },
    ModuleSpec {
        name: "text_encoder",
        inputs: &["input_ids", "attention_mask"],
        outputs: "text_embeds",
    },
    ModuleSpec {
        name: "fusion_encoder",
        inputs: &["image_embeds", "text_embeds", "attention_mask"],
        outputs: "fusion_visual, fusion_text",
    },
    ModuleSpec {
        name: "text_decoder",
        inputs: &[
            "decoder_input_ids",
            "decoder_attention_mask",
            "memory",
            "memory_mask",
        ],
        outputs: "decoder_logits",
    },
    ModuleSpec {
        name: "caption",
        inputs: &["image", "decoder_input_ids", "decoder_attention_mask"],
        outputs: "decoder_logits (decoder attends to visual tokens only)",
    },
    ModuleSpec {
        name: "generate",
        inputs: &["image"],
        outputs: "sequences [B·n, L] (0-padded, start token included), scores [B·n]; with \
                  input_ids/attention_mask the memory is the fused [V; T] (VQA), else visual only",
    },
];

fn need<'a>(inputs: &'a HashMap<String, Tensor>, module: &str, name: &str) -> Result<&'a Tensor> {
    inputs.get(name).ok_or_else(|| {
        let spec = MODULES.iter().find(|m| m.name == module);
        Error::input(format!(
            "module `{module}` needs input tensor `{name}` (inputs: {})",
            spec.map(|s| s.inputs.join(", ")).unwrap_or_default()
        ))
    })
}

/// Runs `module` in eval mode on `device`. Floating inputs are cast to fp32, ids/masks to int64.
pub fn run_module(
    model: &MplugModel,
    module: &str,
    inputs: &HashMap<String, Tensor>,
    generate: &GenerateConfig,
    device: Device,
) -> Result<Vec<(String, Tensor)>> {
    let inputs: HashMap<String, Tensor> = inputs
        .iter()
        .map(|(k, t)| {
            let kind = if t.is_floating_point() {
                Kind::Float
            } else {
                Kind::Int64
            };
            (k.clone(), t.to_kind(kind).to_device(device))
        })
        .collect();
    let get = |name: &str| need(&inputs, module, name);
    let mut out: Vec<(String, Tensor)> = Vec::new();
    tch::no_grad(|| -> Result<()> {
        match module {
            "visual_encoder" => {
                let image = get("image")?;
                out.push(("visual_encoder".into(), model.visual_encoder(image, false)));
                out.push(("image_embeds".into(), model.encode_image(image, false)));
            }
            "text_encoder" => {
                let t = model.encode_text(get("input_ids")?, get("attention_mask")?, false);
                out.push(("text_embeds".into(), t));
            }
            "fusion_encoder" => {
                let (v, t) = model.fuse(
                    get("image_embeds")?,
                    get("text_embeds")?,
                    get("attention_mask")?,
                    false,
                );
                out.push(("fusion_visual".into(), v));
                out.push(("fusion_text".into(), t));
            }
            "text_decoder" => {
                let logits = model.decode(
                    get("decoder_input_ids")?,
                    get("decoder_attention_mask")?,
                    get("memory")?,
                    get("memory_mask")?,
                    false,
                );
                out.push(("decoder_logits".into(), logits));
            }
            "caption" => {
                let v = model.encode_image(get("image")?, false);
                let mask = MplugModel::visual_memory_mask(&v);
                let logits = model.decode(
                    get("decoder_input_ids")?,
                    get("decoder_attention_mask")?,
                    &v,
                    &mask,
                    false,
                );
                out.push(("decoder_logits".into(), logits));
            }
            "mplug" => {
                let image = get("image")?;
                let (ids, mask) = (get("input_ids")?, get("attention_mask")?);
                let raw = model.visual_encoder(image, false);
                let v = model.encode_image(image, false);
                let t = model.encode_text(ids, mask, false);
                let (fv, ft) = model.fuse(&v, &t, mask, false);
                let (image_feat, text_feat) = model.itc_features(&v, &t);
                let (memory, memory_mask) = MplugModel::decoder_memory(&fv, &ft, mask);
                out.push(("visual_encoder".into(), raw));
                out.push(("image_feat".into(), image_feat));
                out.push(("text_feat".into(), text_feat));
                out.push(("itm_logits".into(), model.itm_logits(&ft)));
                out.push(("mlm_logits".into(), model.mlm_logits(&ft)));
                if let (Some(d_ids), Some(d_mask)) = (
                    inputs.get("decoder_input_ids"),
                    inputs.get("decoder_attention_mask"),
                ) {
                    let logits = model.decode(d_ids, d_mask, &memory, &memory_mask, false);
                    out.push(("decoder_logits".into(), logits));
                }
                out.push(("image_embeds".into(), v));
                out.push(("text_embeds".into(), t));
                out.push(("fusion_visual".into(), fv));
                out.push(("fusion_text".into(), ft));
                out.push(("memory".into(), memory));
                out.push(("memory_mask".into(), memory_mask));
            }
            "generate" => {
                let v = model.encode_image(get("image")?, false);
                let (memory, memory_mask) =
                    match (inputs.get("input_ids"), inputs.get("attention_mask")) {
                        (Some(ids), Some(mask)) => {
                            let t = model.encode_text(ids, mask, false);
                            let (fv, ft) = model.fuse(&v, &t, mask, false);
                            MplugModel::decoder_memory(&fv, &ft, mask)
                        }
                        _ => {
                            let m = MplugModel::visual_memory_mask(&v);
                            (v, m)
                        }
                    };
                let prompt = inputs.get("prompt_ids");
                let hyps: Vec<Vec<_>> = if generate.beam_size <= 1 {
                    greedy(model, &memory, &memory_mask, prompt, generate)
                        .into_iter()
                        .map(|h| vec![h])
                        .collect()
                } else {
                    beam_search(model, &memory, &memory_mask, prompt, generate)
                };
                let flat: Vec<_> = hyps.into_iter().flatten().collect();
                let width = flat.iter().map(|h| h.tokens.len()).max().unwrap_or(0);
                let mut ids = vec![0i64; flat.len() * width];
                for (r, h) in flat.iter().enumerate() {
                    ids[r * width..r * width + h.tokens.len()].copy_from_slice(&h.tokens);
                }
                let scores: Vec<f64> = flat.iter().map(|h| h.score).collect();
                out.push((
                    "sequences".into(),
                    Tensor::from_slice(&ids).reshape([flat.len() as i64, width as i64]),
                ));
                out.push(("scores".into(), Tensor::from_slice(&scores)));
            }
            other => {
                let names: Vec<&str> = MODULES.iter().map(|m| m.name).collect();
                return Err(Error::input(format!(
                    "unknown module `{other}` (modules: {})",
                    names.join(", ")
                )));
            }
        }
        Ok(())
    })?;
    Ok(out
        .into_iter()
        .map(|(k, t)| (k, t.to_device(Device::Cpu)))
        .collect())
}
