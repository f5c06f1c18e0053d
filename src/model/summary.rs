//! Parameter counts per module, comparable with the reference's figures (§1.10).

use tch::nn::VarStore;

use super::mplug::MplugModel;

/// Module groups by state-dict prefix, in data-flow order. The first matching prefix wins.
const GROUPS: &[(&str, &str)] = &[
    ("visual_encoder.", "visual_encoder"),
    ("visn_", "visual bridge"),
    ("text_encoder.", "text_encoder"),
    ("fusion_encoder.cls.", "mlm_head"),
    ("fusion_encoder.", "fusion_encoder"),
    ("text_decoder.", "text_decoder"),
    ("", "itc/itm heads"),
];

/// Counts of one model.
#[derive(Debug, Clone, PartialEq)]
pub struct ParameterSummary {
    /// (group, parameters), in [`GROUPS`] order, empty groups dropped.
    pub groups: Vec<(&'static str, i64)>,
    /// The reference's "effective" count: visual + bridge + text encoder + running fusion layers +
    /// decoder (tied LM weight once). Heads, MLM head and CLIP `proj` are outside it.
    pub reference_total: i64,
    /// Every parameter that receives a gradient (all, minus dormant connected-layer cross-attention).
    pub trainable_running: i64,
    /// Everything built.
    pub total: i64,
}

/// Counts the parameters of `model` held in `vs`.
pub fn summarize(vs: &VarStore, model: &MplugModel) -> ParameterSummary {
    let dormant = model.dormant_parameter_prefixes();
    let mut counts = vec![0i64; GROUPS.len()];
    let mut dormant_total = 0;
    for (name, t) in vs.variables() {
        let n = t.numel() as i64;
        let g = GROUPS
            .iter()
            .position(|(prefix, _)| name.starts_with(prefix))
            .unwrap_or(GROUPS.len() - 1);
        counts[g] += n;
        if dormant.iter().any(|p| name.starts_with(p)) {
            dormant_total += n;
        }
    }
    let total: i64 = counts.iter().sum();
    let reference_total = counts[0] + counts[1] + counts[2] + counts[4] + counts[5];
    ParameterSummary {
        groups: GROUPS
            .iter()
            .zip(&counts)
            .filter(|(_, n)| **n > 0)
            .map(|((_, g), n)| (*g, *n))
            .collect(),
        reference_total,
        trainable_running: total - dormant_total,
        total,
    }
}
