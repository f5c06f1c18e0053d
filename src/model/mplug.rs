//! The whole mPLUG model: the module tree of reference §1.1, whose attribute names are the
//! state-dict prefixes (`visual_encoder.visual.…`, `visn_fc`, `text_encoder.…`, `fusion_encoder.…`,
//! `text_decoder.…`, `vision_proj`, `text_proj`, `itm_head`, `temp`).

use tch::nn::{self, Module};
use tch::{Kind, Tensor};

use super::bert::TextEncoder;
use super::config::MplugConfig;
use super::decoder::{DecoderCache, TextDecoder};
use super::fusion::FusionEncoder;
use super::heads::{ContrastiveHeads, LmPredictionHead};
use super::layers::{LayerNorm, Linear, torch_default_linear};
use super::vit::VisionTransformer;

/// The ViT-L style bridge: visn_fc → visn_layer_norm (1e-12) → dropout (`VisionConfig::dropout`,
/// the reference's `self.dropout` 0.1), on every visual token.
#[derive(Debug)]
struct VisualBridge {
    visn_fc: Linear,
    visn_layer_norm: LayerNorm,
}

/// mPLUG with every part a pretraining or task model uses. The MLM head (pretraining code was never
/// released) lives at `fusion_encoder.cls.predictions`, the name `FusionForMaskedLM` would give it.
#[derive(Debug)]
pub struct MplugModel {
    config: MplugConfig,
    visual: VisionTransformer,
    bridge: Option<VisualBridge>,
    text_encoder: TextEncoder,
    fusion_encoder: FusionEncoder,
    mlm_head: LmPredictionHead,
    text_decoder: TextDecoder,
    heads: ContrastiveHeads,
}

impl MplugModel {
    /// Builds the model at `root` with fresh (BERT/CLIP-style) initialisation.
    pub fn new(root: &nn::Path, config: &MplugConfig) -> Self {
        let h = config.bert.hidden_size;
        let bridge = config.has_visual_bridge().then(|| VisualBridge {
            visn_fc: torch_default_linear(root / "visn_fc", config.vision.width, h),
            visn_layer_norm: LayerNorm::new(root / "visn_layer_norm", h, 1e-12),
        });
        MplugModel {
            visual: VisionTransformer::new(root / "visual_encoder" / "visual", &config.vision),
            bridge,
            text_encoder: TextEncoder::new(root / "text_encoder", &config.bert),
            fusion_encoder: FusionEncoder::new(root / "fusion_encoder", &config.bert),
            mlm_head: LmPredictionHead::new(
                root / "fusion_encoder" / "cls" / "predictions",
                &config.bert,
                None,
            ),
            text_decoder: TextDecoder::new(root / "text_decoder", &config.bert),
            heads: ContrastiveHeads::new(root, h, config.embed_dim, config.temp),
            config: config.clone(),
        }
    }

    /// The configuration this model was built from.
    pub fn config(&self) -> &MplugConfig {
        &self.config
    }

    /// Raw ViT output `[B, N+1, W]` (before the bridge).
    pub fn visual_encoder(&self, image: &Tensor, train: bool) -> Tensor {
        self.visual.forward(image, train)
    }

    /// Visual tokens as BERT modules see them `[B, N+1, H]` (after the bridge for ViT-L).
    pub fn encode_image(&self, image: &Tensor, train: bool) -> Tensor {
        let xs = self.visual.forward(image, train);
        match &self.bridge {
            Some(b) => b
                .visn_layer_norm
                .forward(&b.visn_fc.forward(&xs))
                .dropout(self.config.vision.dropout, train),
            None => xs,
        }
    }

    /// Text-encoder states `[B, L, H]`.
    pub fn encode_text(&self, input_ids: &Tensor, attention_mask: &Tensor, train: bool) -> Tensor {
        self.text_encoder.forward(input_ids, attention_mask, train)
    }

    /// Fusion: (visual `[B, Nv, H]`, text `[B, Lt, H]`) → (visual', text').
    pub fn fuse(
        &self,
        visual: &Tensor,
        text: &Tensor,
        text_mask: &Tensor,
        train: bool,
    ) -> (Tensor, Tensor) {
        self.fusion_encoder.forward(visual, text, text_mask, train)
    }

    /// The decoder memory of VQA/grounding/video QA: ([visual; text], [ones; text_mask]).
    pub fn decoder_memory(visual: &Tensor, text: &Tensor, text_mask: &Tensor) -> (Tensor, Tensor) {
        let (b_sz, n_vis) = (visual.size()[0], visual.size()[1]);
        let ones = Tensor::ones([b_sz, n_vis], (text_mask.kind(), text_mask.device()));
        (
            Tensor::cat(&[visual, text], 1),
            Tensor::cat(&[ones, text_mask.shallow_clone()], 1),
        )
    }

    /// All-visible memory mask for a captioning decoder that attends to visual tokens only.
    pub fn visual_memory_mask(visual: &Tensor) -> Tensor {
        let (b_sz, n_vis) = (visual.size()[0], visual.size()[1]);
        Tensor::ones([b_sz, n_vis], (Kind::Int64, visual.device()))
    }

    /// Decoder logits `[B, L, V]`.
    pub fn decode(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        memory: &Tensor,
        memory_mask: &Tensor,
        train: bool,
    ) -> Tensor {
        self.text_decoder
            .forward(input_ids, attention_mask, memory, memory_mask, train)
    }

    /// An empty decoder cache for incremental decoding against `memory` (see [`DecoderCache`]).
    pub fn decoder_cache(&self, memory: &Tensor, memory_mask: &Tensor) -> DecoderCache {
        self.text_decoder.start_cache(memory, memory_mask)
    }

    /// Decoder logits `[B, n, V]` of `new_ids` `[B, n]` after the cached positions.
    pub fn decode_step(&self, new_ids: &Tensor, cache: &mut DecoderCache) -> Tensor {
        self.text_decoder.step(new_ids, cache)
    }

    /// MLM logits on the fused text stream `[B, L, V]`.
    pub fn mlm_logits(&self, fused_text: &Tensor) -> Tensor {
        self.mlm_head.forward(fused_text)
    }

    /// ITC features of the visual CLS and text CLS, each `[B, embed_dim]`, L2-normalised.
    pub fn itc_features(&self, visual: &Tensor, text: &Tensor) -> (Tensor, Tensor) {
        (self.image_itc_feature(visual), self.text_itc_feature(text))
    }

    /// The ITC feature of visual tokens `[B, N, H]` (their CLS projected, L2-normalised).
    pub fn image_itc_feature(&self, visual: &Tensor) -> Tensor {
        self.heads.image_feat(&visual.select(1, 0))
    }

    /// The ITC feature of a clip from its frames' visual tokens `[B, F, N, H]`: `vision_proj` of
    /// each frame's CLS, averaged over frames, then L2-normalised (BLIP/mPLUG video retrieval).
    pub fn video_itc_feature(&self, frames: &Tensor) -> Tensor {
        let cls = frames.select(2, 0); // [B, F, H]
        let proj = self
            .heads
            .vision_projection(&cls)
            .mean_dim(1, false, cls.kind());
        super::heads::l2_normalize(&proj)
    }

    /// The ITC feature of text-encoder states `[B, L, H]`.
    pub fn text_itc_feature(&self, text: &Tensor) -> Tensor {
        self.heads.text_feat(&text.select(1, 0))
    }

    /// ITM logits `[B, 2]` from the fused text CLS.
    pub fn itm_logits(&self, fused_text: &Tensor) -> Tensor {
        self.heads.itm_logits(&fused_text.select(1, 0))
    }

    /// The ITC temperature parameter.
    pub fn temp(&self) -> &Tensor {
        &self.heads.temp
    }

    /// Parameters that exist (and load) but never receive a gradient: the `crossattention` of
    /// connected-attention fusion layers. Optimisers skip them, as PyTorch skips `grad is None`.
    pub fn dormant_parameter_prefixes(&self) -> Vec<String> {
        self.fusion_encoder
            .dormant_layers()
            .into_iter()
            .map(|i| format!("fusion_encoder.encoder.layer.{i}.crossattention."))
            .collect()
    }

    /// The variables of `vs` an optimiser trains, by name: all but the dormant ones.
    pub fn trainable_variables(&self, vs: &tch::nn::VarStore) -> Vec<(String, tch::Tensor)> {
        let dormant = self.dormant_parameter_prefixes();
        crate::model::weights::named_variables(vs)
            .into_iter()
            .filter(|(n, _)| !dormant.iter().any(|d| n.starts_with(d)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn tiny_config() -> MplugConfig {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/tiny.yaml");
        MplugConfig::from_yaml(std::path::Path::new(path))
            .unwrap()
            .0
    }

    fn stats(t: &Tensor) -> (f64, f64) {
        let t = t.to_kind(Kind::Double);
        (
            t.std(true).double_value(&[]),
            t.abs().max().double_value(&[]),
        )
    }

    /// From scratch every module starts as the reference's would: BERT modules N(0, σ) with the
    /// config's `initializer_range`, plain `nn.Linear` heads U(±1/√in), CLIP's ViT W^-½·randn
    /// embeddings, Xavier-uniform `in_proj_weight`. Expected values are PyTorch's formulas.
    #[test]
    fn fresh_init_follows_the_reference_modules() {
        let mut cfg = tiny_config();
        cfg.bert.initializer_range = 0.3;
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let _model = MplugModel::new(&vs.root(), &cfg);
        let v = vs.variables();
        let close = |got: f64, want: f64| (got - want).abs() < 0.06 * want;
        // BERT: N(0, 0.3), zero bias.
        for name in [
            "text_encoder.embeddings.word_embeddings.weight",
            "text_encoder.encoder.layer.0.attention.self.query.weight",
            "fusion_encoder.encoder.layer.3.intermediate.dense.weight",
        ] {
            let (std, _) = stats(&v[name]);
            assert!(close(std, 0.3), "{name}: std {std}");
        }
        let (_, b) = stats(&v["text_encoder.encoder.layer.0.attention.self.query.bias"]);
        assert_eq!(b, 0.0);
        // nn.Linear default: U(±1/√in) for weight and bias; std = bound/√3.
        let bound = 1.0 / (cfg.bert.hidden_size as f64).sqrt();
        let (std, max) = stats(&v["text_proj.weight"]);
        assert!(
            max <= bound && close(std, bound / 3f64.sqrt()),
            "{std} {max}"
        );
        let (std, max) = stats(&v["itm_head.bias"]);
        assert!(max <= bound && std > 0.0, "{std} {max}");
        // CLIP ViT: W^-½ randn embeddings; Xavier in_proj bound √(6 / 4W); zero out_proj bias.
        let w = cfg.vision.width as f64;
        let (std, _) = stats(&v["visual_encoder.visual.positional_embedding"]);
        assert!(close(std, w.powf(-0.5)), "{std}");
        let xavier = (6.0 / (4.0 * w)).sqrt();
        let (std, max) =
            stats(&v["visual_encoder.visual.transformer.resblocks.0.attn.in_proj_weight"]);
        assert!(
            max <= xavier && close(std, xavier / 3f64.sqrt()),
            "{std} {max}"
        );
        let (_, b) = stats(&v["visual_encoder.visual.transformer.resblocks.0.attn.out_proj.bias"]);
        assert_eq!(b, 0.0);
    }

    /// `vision_dropout` reaches both places the reference drops out on the visual side (the CLIP
    /// attention and the bridge): at the reference's 0.1 a training forward differs from the
    /// evaluation forward; at 0 it equals it.
    #[test]
    fn vision_dropout_switches_the_visual_training_noise() {
        let mut cfg = tiny_config();
        assert_eq!(cfg.vision.dropout, 0.1);
        let image = Tensor::randn([2, 3, 32, 32], (tch::Kind::Float, Device::Cpu));
        let gap = |cfg: &MplugConfig| {
            tch::manual_seed(0);
            let vs = nn::VarStore::new(Device::Cpu);
            let model = MplugModel::new(&vs.root(), cfg);
            let _g = tch::no_grad_guard();
            let raw = (model.visual_encoder(&image, true) - model.visual_encoder(&image, false))
                .abs()
                .max()
                .double_value(&[]);
            let bridged = (model.encode_image(&image, true) - model.encode_image(&image, false))
                .abs()
                .max()
                .double_value(&[]);
            (raw, bridged)
        };
        let (raw, bridged) = gap(&cfg);
        assert!(raw > 1e-3 && bridged > 1e-3, "{raw} {bridged}");
        cfg.vision.dropout = 0.0;
        assert_eq!(gap(&cfg), (0.0, 0.0));
    }
}
