//! The text decoder (`text_decoder`: `BertLMHeadModel` / `BertPrefixModel`, reference §1.6): BERT
//! embeddings, `text_decode_layers` layers of causal self-attention + cross-attention to the memory +
//! FFN, and the LM head tied to its own word embeddings.

use tch::Tensor;
use tch::nn;

use super::attention::{causal_mask, cross_mask};
use super::bert::{BertEmbeddings, BertLayer};
use super::config::BertConfig;
use super::heads::LmPredictionHead;

/// `text_decoder`.
#[derive(Debug)]
pub struct TextDecoder {
    embeddings: BertEmbeddings,
    layers: Vec<BertLayer>,
    head: LmPredictionHead,
}

impl TextDecoder {
    /// Builds under `p` (`text_decoder`): `bert.embeddings`, `bert.encoder.layer.{i}`, `cls.predictions`.
    pub fn new(p: nn::Path, cfg: &BertConfig) -> Self {
        let bert = &p / "bert";
        let embeddings = BertEmbeddings::new(&bert / "embeddings", cfg);
        let layer = &bert / "encoder" / "layer";
        let layers = (0..cfg.text_decode_layers)
            .map(|i| BertLayer::new(&layer / i, cfg, true))
            .collect();
        let head = LmPredictionHead::new(
            &p / "cls" / "predictions",
            cfg,
            Some(&embeddings.word_embeddings.weight),
        );
        TextDecoder {
            embeddings,
            layers,
            head,
        }
    }

    /// Hidden states `[B, L, H]` for `[B, L]` ids: causal ∧ padding self-attention, cross-attention to
    /// `memory` `[B, M, H]` under its 0/1 `memory_mask` `[B, M]`.
    pub fn hidden(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        memory: &Tensor,
        memory_mask: &Tensor,
        train: bool,
    ) -> Tensor {
        let mut xs = self.embeddings.forward(input_ids, train);
        let self_mask = causal_mask(attention_mask, xs.kind());
        let mem_mask = cross_mask(memory_mask, xs.kind());
        for layer in &self.layers {
            xs = layer.forward(
                &xs,
                Some(&self_mask),
                Some((memory, Some(&mem_mask))),
                train,
            );
        }
        xs
    }

    /// Logits `[B, L, V]`.
    pub fn forward(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        memory: &Tensor,
        memory_mask: &Tensor,
        train: bool,
    ) -> Tensor {
        let xs = self.hidden(input_ids, attention_mask, memory, memory_mask, train);
        self.head.forward(&xs)
    }
}
