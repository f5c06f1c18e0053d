//! BERT pieces with the original state-dict names (`models/modeling_mplug.py`, post-LN BERT):
//! embeddings, self-/cross-attention blocks, the FFN, and the 6-layer text encoder (`text_encoder`).

use tch::nn::{self, Module};
use tch::{Kind, Tensor};

use super::attention::{multi_head_attention, padding_mask};
use super::config::BertConfig;
use super::layers::{Embedding, LayerNorm, Linear, normal_linear};

/// `embeddings`: word + token type 0 + position 0..L → LayerNorm → dropout.
#[derive(Debug)]
pub struct BertEmbeddings {
    /// `word_embeddings` [V, H]; the decoder's LM head is tied to it.
    pub word_embeddings: Embedding,
    position_embeddings: Embedding,
    token_type_embeddings: Embedding,
    layer_norm: LayerNorm,
    dropout: f64,
}

impl BertEmbeddings {
    /// Builds under `p` (`… / "embeddings"`).
    pub fn new(p: nn::Path, cfg: &BertConfig) -> Self {
        let h = cfg.hidden_size;
        BertEmbeddings {
            word_embeddings: Embedding::new(
                &p / "word_embeddings",
                cfg.vocab_size,
                h,
                cfg.initializer_range,
            ),
            position_embeddings: Embedding::new(
                &p / "position_embeddings",
                cfg.max_position_embeddings,
                h,
                cfg.initializer_range,
            ),
            token_type_embeddings: Embedding::new(
                &p / "token_type_embeddings",
                cfg.type_vocab_size,
                h,
                cfg.initializer_range,
            ),
            layer_norm: LayerNorm::new(&p / "LayerNorm", h, cfg.layer_norm_eps),
            dropout: cfg.hidden_dropout_prob,
        }
    }

    /// `[B, L]` ids → `[B, L, H]`.
    pub fn forward(&self, input_ids: &Tensor, train: bool) -> Tensor {
        self.forward_from(input_ids, 0, train)
    }

    /// As [`BertEmbeddings::forward`] for ids at positions `start..start + L` (incremental decoding).
    pub fn forward_from(&self, input_ids: &Tensor, start: i64, train: bool) -> Tensor {
        let len = input_ids.size()[1];
        let positions = Tensor::arange_start(start, start + len, (Kind::Int64, input_ids.device()))
            .unsqueeze(0);
        let types = positions.zeros_like();
        let xs = self.word_embeddings.forward(input_ids)
            + self.position_embeddings.forward(&positions)
            + self.token_type_embeddings.forward(&types);
        self.layer_norm.forward(&xs).dropout(self.dropout, train)
    }
}

/// `attention` / `crossattention`: `self.{query,key,value}` then `output.{dense,LayerNorm}`.
#[derive(Debug)]
pub struct BertAttention {
    query: Linear,
    key: Linear,
    value: Linear,
    dense: Linear,
    layer_norm: LayerNorm,
    heads: i64,
    attn_dropout: f64,
    hidden_dropout: f64,
}

impl BertAttention {
    /// Keys and values read `kv_width`-wide states (`encoder_width` for cross-attention).
    pub fn new(p: nn::Path, cfg: &BertConfig, kv_width: i64) -> Self {
        let h = cfg.hidden_size;
        let s = &p / "self";
        let std = cfg.initializer_range;
        BertAttention {
            query: normal_linear(&s / "query", h, h, std),
            key: normal_linear(&s / "key", kv_width, h, std),
            value: normal_linear(&s / "value", kv_width, h, std),
            dense: normal_linear(&p / "output" / "dense", h, h, std),
            layer_norm: LayerNorm::new(&p / "output" / "LayerNorm", h, cfg.layer_norm_eps),
            heads: cfg.num_attention_heads,
            attn_dropout: cfg.attention_probs_dropout_prob,
            hidden_dropout: cfg.hidden_dropout_prob,
        }
    }

    /// LayerNorm(xs + dropout(dense(Attn(q = xs, k = v = kv)))).
    pub fn forward(&self, xs: &Tensor, kv: &Tensor, mask: Option<&Tensor>, train: bool) -> Tensor {
        let (k, v) = self.project_kv(kv);
        self.attend(xs, &k, &v, mask, train)
    }

    /// The key and value projections of `kv` `[B, L, kv_width]` → two `[B, L, H]` (what a decoder
    /// caches).
    pub fn project_kv(&self, kv: &Tensor) -> (Tensor, Tensor) {
        (self.key.forward(kv), self.value.forward(kv))
    }

    /// [`BertAttention::forward`] with keys and values already projected.
    pub fn attend(
        &self,
        xs: &Tensor,
        k: &Tensor,
        v: &Tensor,
        mask: Option<&Tensor>,
        train: bool,
    ) -> Tensor {
        let ctx = multi_head_attention(
            &self.query.forward(xs),
            k,
            v,
            self.heads,
            mask,
            self.attn_dropout,
            train,
        );
        let out = self.dense.forward(&ctx).dropout(self.hidden_dropout, train);
        self.layer_norm.forward(&(out + xs))
    }
}

/// One BERT layer: self-attention, optional cross-attention, FFN (`intermediate`, `output`).
#[derive(Debug)]
pub struct BertLayer {
    attention: BertAttention,
    crossattention: Option<BertAttention>,
    intermediate: Linear,
    output_dense: Linear,
    output_norm: LayerNorm,
    hidden_dropout: f64,
}

impl BertLayer {
    /// A layer under `p` (`… / "layer" / i`); `cross` adds `crossattention`.
    pub fn new(p: nn::Path, cfg: &BertConfig, cross: bool) -> Self {
        let h = cfg.hidden_size;
        let std = cfg.initializer_range;
        BertLayer {
            attention: BertAttention::new(&p / "attention", cfg, h),
            crossattention: cross
                .then(|| BertAttention::new(&p / "crossattention", cfg, cfg.encoder_width)),
            intermediate: normal_linear(
                &p / "intermediate" / "dense",
                h,
                cfg.intermediate_size,
                std,
            ),
            output_dense: normal_linear(&p / "output" / "dense", cfg.intermediate_size, h, std),
            output_norm: LayerNorm::new(&p / "output" / "LayerNorm", h, cfg.layer_norm_eps),
            hidden_dropout: cfg.hidden_dropout_prob,
        }
    }

    /// Self-attention (additive `self_mask`), then cross-attention to `memory` when given, then FFN.
    pub fn forward(
        &self,
        xs: &Tensor,
        self_mask: Option<&Tensor>,
        memory: Option<(&Tensor, Option<&Tensor>)>,
        train: bool,
    ) -> Tensor {
        let mut xs = self.attention.forward(xs, xs, self_mask, train);
        if let Some((mem, mem_mask)) = memory {
            let cross = self
                .crossattention
                .as_ref()
                .expect("memory given to a layer built without crossattention");
            xs = cross.forward(&xs, mem, mem_mask, train);
        }
        self.feed_forward(&xs, train)
    }

    /// The layer's self-attention block (for incremental decoding).
    pub fn self_attention(&self) -> &BertAttention {
        &self.attention
    }

    /// The layer's cross-attention block, when it has one.
    pub fn cross_attention(&self) -> Option<&BertAttention> {
        self.crossattention.as_ref()
    }

    /// LayerNorm(xs + dropout(dense(GELU(intermediate(xs))))), exact erf GELU.
    pub fn feed_forward(&self, xs: &Tensor, train: bool) -> Tensor {
        let hidden = self.intermediate.forward(xs).gelu("none");
        let out = self
            .output_dense
            .forward(&hidden)
            .dropout(self.hidden_dropout, train);
        self.output_norm.forward(&(out + xs))
    }
}

/// `text_encoder`: a `BertModel` with `text_encoder_layers` layers and no pooler.
#[derive(Debug)]
pub struct TextEncoder {
    embeddings: BertEmbeddings,
    layers: Vec<BertLayer>,
}

impl TextEncoder {
    /// Builds under `p` (`text_encoder`).
    pub fn new(p: nn::Path, cfg: &BertConfig) -> Self {
        let layer = &p / "encoder" / "layer";
        TextEncoder {
            embeddings: BertEmbeddings::new(&p / "embeddings", cfg),
            layers: (0..cfg.text_encoder_layers)
                .map(|i| BertLayer::new(&layer / i, cfg, false))
                .collect(),
        }
    }

    /// `[B, L]` ids and 0/1 mask → `last_hidden_state` `[B, L, H]` (bidirectional, padding mask only).
    pub fn forward(&self, input_ids: &Tensor, attention_mask: &Tensor, train: bool) -> Tensor {
        let mut xs = self.embeddings.forward(input_ids, train);
        let mask = padding_mask(attention_mask, xs.kind());
        for layer in &self.layers {
            xs = layer.forward(&xs, Some(&mask), None, train);
        }
        xs
    }
}
