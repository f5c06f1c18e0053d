//! Text generation with the decoder: greedy and the reference's beam search
//! (`models/predictor.py` `TextGenerator._fast_translate_batch`, reference §3.7):
//! - start token 101 ([CLS]) or a prompt seeds every beam; end token 102 ([SEP]);
//! - the reference re-runs the whole prefix each step; with `kv_cache` (the default) each step runs
//!   only the new token against cached keys and values (`DecoderCache`), the same attention up to
//!   floating-point summation order;
//! - `step < min_length` forbids EOS (log-prob −1e20);
//! - GNMT length penalty lp = ((5 + step + 1) / 6)^0.6 divides the cumulative log-prob;
//! - a beam that emits EOS is recorded as finished (score, tokens incl. start and EOS) and is **not**
//!   removed; when the top beam of an example finishes, or at step `max_length − 1`, all its beams are
//!   recorded and the example leaves the batch; hypotheses sorted by score, best `num_return` kept.

use tch::{Kind, Tensor};

use super::decoder::DecoderCache;
use super::mplug::MplugModel;

/// [CLS], the decoder's start token.
pub const BOS_ID: i64 = crate::text::tokenizer::CLS_ID;
/// [SEP], the decoder's end token.
pub const EOS_ID: i64 = crate::text::tokenizer::SEP_ID;
const LENGTH_PENALTY_ALPHA: f64 = 0.6;

/// Generation settings (the reference's argparse names).
#[derive(Debug, Clone, Copy)]
pub struct GenerateConfig {
    /// Beams (5 in the reference scripts); 1 with [`greedy`].
    pub beam_size: i64,
    /// No EOS before this many generated tokens.
    pub min_length: i64,
    /// At most this many generated tokens.
    pub max_length: i64,
    /// Hypotheses returned per example.
    pub num_return: usize,
    /// Decode incrementally with a key/value cache instead of re-running the prefix.
    pub kv_cache: bool,
}

/// One finished hypothesis.
#[derive(Debug, Clone, PartialEq)]
pub struct Hypothesis {
    /// Length-normalised score (cumulative log-prob / lp).
    pub score: f64,
    /// Tokens including the start token (or prompt) and, if emitted, EOS.
    pub tokens: Vec<i64>,
}

fn last_log_probs(
    model: &MplugModel,
    seq: &Tensor,
    memory: &Tensor,
    memory_mask: &Tensor,
    train: bool,
) -> Tensor {
    let mask = seq.ones_like();
    let logits = model.decode(seq, &mask, memory, memory_mask, train);
    let last = logits.select(1, logits.size()[1] - 1).to_kind(Kind::Float);
    last.softmax(-1, Kind::Float).log()
}

/// Log-probabilities of the next token after `seq` `[B, L]`: through the cache when there is one
/// (feeding the positions it has not seen), else by re-running the whole prefix.
fn next_log_probs(
    model: &MplugModel,
    seq: &Tensor,
    memory: &Tensor,
    memory_mask: &Tensor,
    cache: Option<&mut DecoderCache>,
) -> Tensor {
    match cache {
        Some(cache) => {
            let len = seq.size()[1];
            let new = seq.narrow(1, cache.len(), len - cache.len());
            let logits = model.decode_step(&new, cache);
            let last = logits.select(1, logits.size()[1] - 1).to_kind(Kind::Float);
            last.softmax(-1, Kind::Float).log()
        }
        None => last_log_probs(model, seq, memory, memory_mask, false),
    }
}

fn start_tokens(b_sz: i64, prompt: Option<&Tensor>, device: tch::Device) -> Tensor {
    match prompt {
        Some(p) => p.to_kind(Kind::Int64),
        None => Tensor::full([b_sz, 1], BOS_ID, (Kind::Int64, device)),
    }
}

/// Greedy decoding: argmax each step, EOS forbidden before `min_length`; stops when every sequence
/// has emitted EOS or after `max_length` tokens. Returns one hypothesis per example (score = sum of
/// log-probs of the chosen tokens, unnormalised).
pub fn greedy(
    model: &MplugModel,
    memory: &Tensor,
    memory_mask: &Tensor,
    prompt: Option<&Tensor>,
    cfg: &GenerateConfig,
) -> Vec<Hypothesis> {
    tch::no_grad(|| {
        let b_sz = memory.size()[0];
        let mut seq = start_tokens(b_sz, prompt, memory.device());
        let start_len = seq.size()[1] as usize;
        let mut done = vec![false; b_sz as usize];
        let mut scores = vec![0f64; b_sz as usize];
        let mut lengths = vec![0usize; b_sz as usize];
        let mut cache = cfg
            .kv_cache
            .then(|| model.decoder_cache(memory, memory_mask));
        for step in 0..cfg.max_length {
            let lp = next_log_probs(model, &seq, memory, memory_mask, cache.as_mut());
            if step < cfg.min_length {
                let _ = lp.select(1, EOS_ID).fill_(-1e20);
            }
            let (best, idx) = lp.max_dim(-1, false);
            let best = Vec::<f64>::try_from(best.to_kind(Kind::Double)).unwrap_or_default();
            let mut ids = Vec::<i64>::try_from(&idx).unwrap_or_default();
            for b in 0..b_sz as usize {
                if done[b] {
                    ids[b] = 0; // [PAD] after EOS
                } else {
                    scores[b] += best[b];
                    lengths[b] = step as usize + 1;
                    done[b] = ids[b] == EOS_ID;
                }
            }
            let col = Tensor::from_slice(&ids)
                .to_device(seq.device())
                .unsqueeze(1);
            seq = Tensor::cat(&[seq, col], 1);
            if done.iter().all(|d| *d) {
                break;
            }
        }
        let rows = Vec::<Vec<i64>>::try_from(&seq).unwrap_or_default();
        rows.into_iter()
            .enumerate()
            .map(|(b, r)| Hypothesis {
                score: scores[b],
                tokens: r[..start_len + lengths[b]].to_vec(),
            })
            .collect()
    })
}

/// The reference's beam search. Returns, per example, up to `num_return` hypotheses, best first.
pub fn beam_search(
    model: &MplugModel,
    memory: &Tensor,
    memory_mask: &Tensor,
    prompt: Option<&Tensor>,
    cfg: &GenerateConfig,
) -> Vec<Vec<Hypothesis>> {
    tch::no_grad(|| beam_search_core(model, memory, memory_mask, prompt, cfg, false))
        .into_iter()
        .map(|hs| {
            hs.into_iter()
                .map(|h| Hypothesis {
                    score: h.value,
                    tokens: h.tokens,
                })
                .collect()
        })
        .collect()
}

/// A hypothesis whose score is still a tensor of the autograd graph (SCST).
#[derive(Debug)]
pub struct ScoredHypothesis {
    /// Length-normalised cumulative log-prob, differentiable.
    pub score: Tensor,
    /// Tokens including the start token and, if emitted, EOS.
    pub tokens: Vec<i64>,
}

/// The reference's `translate_batch_scst`: the same beam search **with gradients** and the model in
/// training mode (dropout active), every step re-running the whole prefix as the reference does (a
/// key/value cache would reuse one dropout draw of the prefix, which the reference never does).
/// `cfg.kv_cache` is ignored.
pub fn beam_search_with_grad(
    model: &MplugModel,
    memory: &Tensor,
    memory_mask: &Tensor,
    cfg: &GenerateConfig,
) -> Vec<Vec<ScoredHypothesis>> {
    beam_search_core(model, memory, memory_mask, None, cfg, true)
        .into_iter()
        .map(|hs| {
            hs.into_iter()
                .map(|h| ScoredHypothesis {
                    score: h.score.unwrap_or_else(|| Tensor::from(h.value as f32)),
                    tokens: h.tokens,
                })
                .collect()
        })
        .collect()
}

/// A recorded hypothesis: its score as a number and, when training, as a tensor of the graph.
struct Found {
    value: f64,
    score: Option<Tensor>,
    tokens: Vec<i64>,
}

fn beam_search_core(
    model: &MplugModel,
    memory: &Tensor,
    memory_mask: &Tensor,
    prompt: Option<&Tensor>,
    cfg: &GenerateConfig,
    train: bool,
) -> Vec<Vec<Found>> {
    let device = memory.device();
    let b_sz = memory.size()[0];
    let beam = cfg.beam_size;
    let tile = |t: &Tensor| t.repeat_interleave_self_int(beam, 0, None);
    let mut memory = tile(memory);
    let mut memory_mask = tile(memory_mask);
    let mut alive = tile(&start_tokens(b_sz, prompt, device));
    // [0, −inf, …] per example: only the first beam expands at step 0
    let mut init = vec![f64::NEG_INFINITY; (b_sz * beam) as usize];
    for b in 0..b_sz {
        init[(b * beam) as usize] = 0.0;
    }
    let mut topk_log_probs = Tensor::from_slice(&init)
        .to_kind(Kind::Float)
        .to_device(device);
    let mut batch_offset: Vec<usize> = (0..b_sz as usize).collect();
    let mut hypotheses: Vec<Vec<Found>> = (0..b_sz).map(|_| Vec::new()).collect();
    let mut results: Vec<Vec<Found>> = (0..b_sz).map(|_| Vec::new()).collect();
    let mut cache = (cfg.kv_cache && !train).then(|| model.decoder_cache(&memory, &memory_mask));
    for step in 0..cfg.max_length {
        let n_alive = batch_offset.len() as i64;
        let log_probs = if train {
            last_log_probs(model, &alive, &memory, &memory_mask, true)
        } else {
            next_log_probs(model, &alive, &memory, &memory_mask, cache.as_mut())
        };
        let vocab = log_probs.size()[1];
        if step < cfg.min_length {
            let _ = log_probs.select(1, EOS_ID).fill_(-1e20);
        }
        let log_probs = log_probs + topk_log_probs.view([-1, 1]);
        let penalty = ((5.0 + (step + 1) as f64) / 6.0).powf(LENGTH_PENALTY_ALPHA);
        let curr = (log_probs / penalty).reshape([n_alive, beam * vocab]);
        let (topk_scores, topk_ids) = curr.topk(beam, -1, true, true);
        topk_log_probs = &topk_scores * penalty;
        let beam_index = topk_ids.divide_scalar_mode(vocab, "floor");
        let token_ids = topk_ids.fmod(vocab);
        let offsets = Tensor::arange(n_alive, (Kind::Int64, device)) * beam;
        let batch_index = &beam_index + offsets.unsqueeze(1); // [n_alive, beam]
        let select = batch_index.view([-1]);
        alive = Tensor::cat(
            &[alive.index_select(0, &select), token_ids.view([-1, 1])],
            -1,
        );
        let mut finished = Vec::<Vec<i64>>::try_from(&token_ids.eq(EOS_ID).to_kind(Kind::Int64))
            .unwrap_or_default();
        if step + 1 == cfg.max_length {
            finished
                .iter_mut()
                .for_each(|r| r.iter_mut().for_each(|f| *f = 1));
        }
        let any_finished = finished.iter().any(|r| r.contains(&1));
        let mut keep: Vec<i64> = (0..n_alive).collect();
        if any_finished {
            let seqs = Vec::<Vec<i64>>::try_from(&alive).unwrap_or_default();
            let scores =
                Vec::<Vec<f64>>::try_from(&topk_scores.to_kind(Kind::Double)).unwrap_or_default();
            keep.clear();
            for i in 0..n_alive as usize {
                let b = batch_offset[i];
                let top_done = finished[i][0] == 1;
                for j in 0..beam as usize {
                    if finished[i][j] == 1 || top_done {
                        hypotheses[b].push(Found {
                            value: scores[i][j],
                            score: train.then(|| topk_scores.get(i as i64).get(j as i64)),
                            tokens: seqs[i * beam as usize + j].clone(),
                        });
                    }
                }
                if top_done {
                    let mut best = std::mem::take(&mut hypotheses[b]);
                    // stable sort, descending, as Python's sorted(reverse=True)
                    best.sort_by(|x, y| y.value.total_cmp(&x.value));
                    best.truncate(cfg.num_return);
                    results[b] = best;
                } else {
                    keep.push(i as i64);
                }
            }
            if keep.is_empty() {
                break;
            }
        }
        let keep_t = Tensor::from_slice(&keep).to_device(device);
        let batch_index = batch_index.index_select(0, &keep_t);
        topk_log_probs = topk_log_probs.index_select(0, &keep_t).view([-1]);
        batch_offset = keep.iter().map(|&i| batch_offset[i as usize]).collect();
        let len = alive.size()[1];
        alive = alive
            .view([-1, beam, len])
            .index_select(0, &keep_t)
            .view([-1, len]);
        let select = batch_index.view([-1]);
        memory = memory.index_select(0, &select);
        memory_mask = memory_mask.index_select(0, &select);
        if let Some(cache) = cache.as_mut() {
            cache.reorder(&select);
        }
    }
    results
}
