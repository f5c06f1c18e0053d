//! Multi-head attention and the reference's additive masks.
//!
//! Every attention in the model goes through libtorch's `scaled_dot_product_attention` (fused kernels
//! on GPU). Masks are *additive* float tensors broadcast to `[B, heads, Lq, Lk]`, built exactly as the
//! original builds them (shared/docs/mplug-reference.md §1.8):
//! - self-attention padding: `(1 − m) · −10000` ([`padding_mask`]);
//! - decoder self-attention: causal ∧ padding, same constant ([`causal_mask`]);
//! - cross-attention memory: HF `invert_attention_mask`, `(1 − m) · −1e9` in fp32, −1e4 in fp16
//!   ([`cross_mask`]).

use tch::{Kind, Tensor};

/// Scaled dot-product attention over `[B, L, heads·d]` projections; returns `[B, Lq, heads·d]`.
///
/// `mask` is additive, broadcastable to `[B, heads, Lq, Lk]`. Dropout applies to the probabilities
/// when `train` (the reference's attention dropout).
pub fn multi_head_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: i64,
    mask: Option<&Tensor>,
    dropout_p: f64,
    train: bool,
) -> Tensor {
    let (b_sz, q_len, width) = q.size3().expect("attention query is [B, L, W]");
    let k_len = k.size()[1];
    let head_dim = width / heads;
    let split = |xs: &Tensor, len: i64| xs.reshape([b_sz, len, heads, head_dim]).transpose(1, 2);
    let (q, k, v) = (split(q, q_len), split(k, k_len), split(v, k_len));
    let mask = mask.map(|m| m.to_kind(q.kind()));
    let out = Tensor::scaled_dot_product_attention(
        &q,
        &k,
        &v,
        mask.as_ref(),
        if train { dropout_p } else { 0.0 },
        false,
        None,
        false,
    );
    out.transpose(1, 2).reshape([b_sz, q_len, width])
}

/// `[B, L]` 0/1 padding mask → additive `[B, 1, 1, L]`: 0 where visible, −10000 where padded.
pub fn padding_mask(mask: &Tensor, kind: Kind) -> Tensor {
    (mask.to_kind(kind).neg() + 1.0)
        .multiply_scalar(-10000.0)
        .unsqueeze(1)
        .unsqueeze(1)
}

/// `[B, L]` padding mask → additive `[B, 1, L, L]` causal mask of a decoder (`is_decoder=True`):
/// position i sees j ≤ i where j is not padding; −10000 elsewhere.
pub fn causal_mask(mask: &Tensor, kind: Kind) -> Tensor {
    let len = mask.size()[1];
    let ones = Tensor::ones([len, len], (kind, mask.device()));
    let lower = ones.tril(0).unsqueeze(0); // [1, L, L]
    let visible = lower * mask.to_kind(kind).unsqueeze(1); // [B, L, L]
    (visible.neg() + 1.0).multiply_scalar(-10000.0).unsqueeze(1)
}

/// `[B, M]` memory mask → additive `[B, 1, 1, M]` (HF `invert_attention_mask`).
pub fn cross_mask(mask: &Tensor, kind: Kind) -> Tensor {
    let big = if kind == Kind::Half { -1e4 } else { -1e9 };
    (mask.to_kind(kind).neg() + 1.0)
        .multiply_scalar(big)
        .unsqueeze(1)
        .unsqueeze(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-computed case: one head, d = 2, three keys, the last one padded.
    /// scores = q·k / √2 = [1/√2, 0, ·]; softmax over the first two = [e^(1/√2), 1] / (e^(1/√2) + 1).
    #[test]
    fn attention_with_known_mask() {
        let q = Tensor::from_slice(&[1.0f32, 0.0]).reshape([1, 1, 2]);
        let k = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 1.0, 5.0, 5.0]).reshape([1, 3, 2]);
        let v = Tensor::from_slice(&[10.0f32, 0.0, 0.0, 10.0, 100.0, 100.0]).reshape([1, 3, 2]);
        let m = Tensor::from_slice(&[1i64, 1, 0]).reshape([1, 3]);
        let out = multi_head_attention(
            &q,
            &k,
            &v,
            1,
            Some(&padding_mask(&m, Kind::Float)),
            0.1,
            false,
        );
        let e = (1.0f64 / 2f64.sqrt()).exp();
        let (p0, p1) = (e / (e + 1.0), 1.0 / (e + 1.0));
        let got = Vec::<f32>::try_from(out.reshape([2])).unwrap();
        assert!((got[0] as f64 - 10.0 * p0).abs() < 1e-4, "{got:?}");
        assert!((got[1] as f64 - 10.0 * p1).abs() < 1e-4, "{got:?}");
    }

    /// Two heads must not mix: head 1 only sees dims 2..4.
    #[test]
    fn heads_are_independent() {
        let q = Tensor::from_slice(&[0.0f32, 0.0, 50.0, 0.0]).reshape([1, 1, 4]);
        let k =
            Tensor::from_slice(&[0.0f32, 0.0, 1.0, 0.0, 0.0, 0.0, -1.0, 0.0]).reshape([1, 2, 4]);
        let v = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]).reshape([1, 2, 4]);
        let out = multi_head_attention(&q, &k, &v, 2, None, 0.0, false);
        let got = Vec::<f32>::try_from(out.reshape([4])).unwrap();
        // head 0: q = 0 → uniform → mean of v rows = [3, 4]; head 1: all weight on key 0 → [3, 4]
        assert!(
            (got[0] - 3.0).abs() < 1e-5 && (got[1] - 4.0).abs() < 1e-5,
            "{got:?}"
        );
        assert!(
            (got[2] - 3.0).abs() < 1e-4 && (got[3] - 4.0).abs() < 1e-4,
            "{got:?}"
        );
    }

    #[test]
    fn mask_constants() {
        let m = Tensor::from_slice(&[1i64, 1, 0]).reshape([1, 3]);
        let p = Vec::<f32>::try_from(padding_mask(&m, Kind::Float).reshape([3])).unwrap();
        assert_eq!(p, vec![0.0, 0.0, -10000.0]);
        let c = Vec::<f32>::try_from(cross_mask(&m, Kind::Float).reshape([3])).unwrap();
        assert_eq!(c, vec![0.0, 0.0, -1e9]);
        let cm = causal_mask(&m, Kind::Float);
        assert_eq!(cm.size(), vec![1, 1, 3, 3]);
        let got = Vec::<f32>::try_from(cm.reshape([9])).unwrap();
        let n = -10000.0;
        assert_eq!(got, vec![0.0, n, n, 0.0, 0.0, n, 0.0, 0.0, n]);
    }
}
