//! The text decoder (`text_decoder`: `BertLMHeadModel` / `BertPrefixModel`, reference §1.6): BERT
//! embeddings, `text_decode_layers` layers of causal self-attention + cross-attention to the memory +
//! FFN, and the LM head tied to its own word embeddings.

use tch::Tensor;
use tch::nn;

use super::attention::{causal_mask, cross_mask};
use super::bert::{BertEmbeddings, BertLayer};
use super::config::BertConfig;
use super::heads::LmPredictionHead;

/// What incremental decoding keeps between steps: per layer the self-attention keys and values of
/// every position so far, and the cross-attention keys and values of the memory (computed once).
/// Rows follow the batch; [`DecoderCache::reorder`] follows beam reordering.
#[derive(Debug)]
pub struct DecoderCache {
    self_kv: Vec<Option<(Tensor, Tensor)>>,
    cross_kv: Vec<(Tensor, Tensor)>,
    cross_mask: Tensor,
    len: i64,
}

impl DecoderCache {
    /// Positions cached so far.
    pub fn len(&self) -> i64 {
        self.len
    }

    /// Whether nothing has been decoded yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Keeps (and repeats) the rows `select` `[N]`, as the beam search reorders its sequences.
    pub fn reorder(&mut self, select: &Tensor) {
        let pick = |t: &Tensor| t.index_select(0, select);
        for kv in self.self_kv.iter_mut().flatten() {
            *kv = (pick(&kv.0), pick(&kv.1));
        }
        for kv in &mut self.cross_kv {
            *kv = (pick(&kv.0), pick(&kv.1));
        }
        self.cross_mask = pick(&self.cross_mask);
    }
}

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

    /// An empty cache for decoding against `memory` `[B, M, H]` under its 0/1 `memory_mask`.
    pub fn start_cache(&self, memory: &Tensor, memory_mask: &Tensor) -> DecoderCache {
        let cross_kv = self
            .layers
            .iter()
            .map(|l| {
                l.cross_attention()
                    .expect("decoder layers have crossattention")
                    .project_kv(memory)
            })
            .collect();
        DecoderCache {
            self_kv: self.layers.iter().map(|_| None).collect(),
            cross_kv,
            cross_mask: cross_mask(memory_mask, memory.kind()),
            len: 0,
        }
    }

    /// Logits `[B, n, V]` of `new_ids` `[B, n]` placed after the cached positions, which it appends
    /// to the cache. Every position is visible (generation's all-ones mask), causally: the same
    /// attention as [`TextDecoder::forward`] over the whole sequence, without recomputing the prefix.
    pub fn step(&self, new_ids: &Tensor, cache: &mut DecoderCache) -> Tensor {
        let n = new_ids.size()[1];
        let past = cache.len;
        let mut xs = self.embeddings.forward_from(new_ids, past, false);
        // new position i sees cached positions and new positions ≤ i; a single new token sees all
        let self_mask = (n > 1).then(|| {
            let visible = Tensor::ones([n, past + n], (xs.kind(), xs.device())).tril(past);
            (visible.neg() + 1.0)
                .multiply_scalar(-10000.0)
                .view([1, 1, n, past + n])
        });
        for (i, layer) in self.layers.iter().enumerate() {
            let att = layer.self_attention();
            let (k_new, v_new) = att.project_kv(&xs);
            let (k, v) = match cache.self_kv[i].take() {
                Some((k0, v0)) => (Tensor::cat(&[k0, k_new], 1), Tensor::cat(&[v0, v_new], 1)),
                None => (k_new, v_new),
            };
            let h = att.attend(&xs, &k, &v, self_mask.as_ref(), false);
            cache.self_kv[i] = Some((k, v));
            let (ck, cv) = &cache.cross_kv[i];
            let cross = layer
                .cross_attention()
                .expect("decoder layers have crossattention");
            let h = cross.attend(&h, ck, cv, Some(&cache.cross_mask), false);
            xs = layer.feed_forward(&h, false);
        }
        cache.len += n;
        self.head.forward(&xs)
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
