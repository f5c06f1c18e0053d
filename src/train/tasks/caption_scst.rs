//! Captioning, SCST stage (reference §3.3, `caption_mplug_scst.py`): self-critical sequence training
//! with CIDEr-D as the reward.
//!
//! Per batch: beam search **with gradients** from `[CLS]` over the visual tokens (beam 5, all five
//! final hypotheses kept with their length-normalised scores, dropout active); each hypothesis
//! decoded as the reference's evaluator does, PTB-tokenised with its image's references, and
//! rewarded with its CIDEr-D computed over the batch (document frequencies from the batch's
//! references, each image's list counted once per beam, as `compute_ciders` on the repeated lists);
//! the baseline is the mean reward of the image's beams; loss = −mean[(score / tokens) · (reward −
//! baseline)], tokens = the hypothesis length including `[CLS]` and `[SEP]`. No accumulation.

use std::collections::BTreeMap;
use std::sync::Arc;

use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};
use crate::eval::cider_d::cider_d;
use crate::eval::ptb_tokenizer::tokenize_caption;
use crate::eval::task_model::TaskParts;
use crate::loader::HostBatch;
use crate::loader::sample::SampleKind;
use crate::model::MplugModel;
use crate::model::generate::{GenerateConfig, beam_search_with_grad};
use crate::text::BertTokenizer;
use crate::text::decode::decode_generated;
use crate::train::config::TrainConfig;
use crate::train::task::{StepContext, TaskLosses, TrainTask, metric, metric_value};

/// Caption fine-tuning with the CIDEr-D reward.
pub struct CaptionScstTask {
    tokenizer: Arc<BertTokenizer>,
    generate: GenerateConfig,
    device: Device,
}

impl CaptionScstTask {
    /// A task decoding with `generate` (its `num_return` is set to the beam size: every beam is
    /// rewarded).
    pub fn new(tokenizer: Arc<BertTokenizer>, generate: GenerateConfig, device: Device) -> Self {
        let generate = GenerateConfig {
            num_return: generate.beam_size.max(1) as usize,
            ..generate
        };
        CaptionScstTask {
            tokenizer,
            generate,
            device,
        }
    }
}

/// What one SCST batch gives.
#[derive(Debug)]
pub struct ScstOutput {
    /// The loss to back-propagate.
    pub loss: Tensor,
    /// `[B × beam]` rewards (CIDEr-D), image after image, best beam first.
    pub rewards: Vec<f64>,
    /// The hypotheses' token ids, in the same order.
    pub hypotheses: Vec<Vec<i64>>,
}

/// Per-hypothesis CIDEr-D rewards: `generated[i]` scored against `references[i / beam]`, with the
/// document frequencies of this batch (the reference's `compute_ciders(caps_gt, caps_gen)` over
/// the lists repeated per beam). Both sides PTB-tokenised.
pub fn scst_rewards(generated: &[String], references: &[Vec<String>], beam: usize) -> Vec<f64> {
    let refs: Vec<Vec<String>> = references
        .iter()
        .map(|rs| rs.iter().map(|r| tokenize_caption(r)).collect())
        .collect();
    let pairs: Vec<(String, Vec<String>)> = generated
        .iter()
        .enumerate()
        .map(|(i, g)| (tokenize_caption(g), refs[i / beam].clone()))
        .collect();
    cider_d(&pairs).1
}

/// The reference's SCST loss for `images` `[B, 3, S, S]` with each image's reference captions.
pub fn scst_loss(
    model: &MplugModel,
    images: &Tensor,
    references: &[Vec<String>],
    tokenizer: &BertTokenizer,
    generate: &GenerateConfig,
) -> Result<ScstOutput> {
    let beam = generate.num_return;
    let visual = model.encode_image(images, true);
    let memory_mask = MplugModel::visual_memory_mask(&visual);
    let found = beam_search_with_grad(model, &visual, &memory_mask, generate);
    if found.len() != references.len() {
        return Err(Error::internal(format!(
            "{} images but {} reference lists",
            found.len(),
            references.len()
        )));
    }
    let mut scores = Vec::with_capacity(found.len() * beam);
    let mut lengths = Vec::with_capacity(found.len() * beam);
    let mut hypotheses = Vec::with_capacity(found.len() * beam);
    for (b, hs) in found.into_iter().enumerate() {
        // the reference stacks the beams of each image: fewer than `beam` would not stack
        if hs.len() != beam {
            return Err(Error::internal(format!(
                "image {b}: {} hypotheses, beam {beam}",
                hs.len()
            )));
        }
        for h in hs {
            scores.push(h.score);
            lengths.push(h.tokens.len() as f32);
            hypotheses.push(h.tokens);
        }
    }
    let generated: Vec<String> = hypotheses
        .iter()
        .map(|t| decode_generated(tokenizer, t))
        .collect();
    let rewards = scst_rewards(&generated, references, beam);
    // the reference's rewards and lengths are float32 tensors
    let reward = Tensor::from_slice(&rewards.iter().map(|&r| r as f32).collect::<Vec<_>>())
        .to_device(visual.device())
        .view([-1, beam as i64]);
    let advantage = &reward - reward.mean_dim(-1, true, Kind::Float);
    let lengths = Tensor::from_slice(&lengths)
        .to_device(visual.device())
        .view([-1, beam as i64]);
    let score = Tensor::stack(&scores, 0)
        .to_kind(Kind::Float)
        .view([-1, beam as i64]);
    let loss = -(score / lengths * advantage).mean(Kind::Float);
    Ok(ScstOutput {
        loss,
        rewards,
        hypotheses,
    })
}

impl TrainTask for CaptionScstTask {
    fn sample_kind(&self) -> SampleKind {
        SampleKind::CaptionTarget(self.tokenizer.clone())
    }

    fn parts(&self) -> TaskParts {
        TaskParts::VisualDecoder
    }

    fn losses(
        &mut self,
        model: &MplugModel,
        batch: &HostBatch,
        _cfg: &TrainConfig,
        _ctx: StepContext,
    ) -> Result<TaskLosses> {
        let references = batch
            .references
            .as_ref()
            .ok_or_else(|| Error::internal("an SCST batch without reference captions"))?;
        let t = batch.to_tensors(self.device, true);
        let out = scst_loss(
            model,
            &t.images,
            references,
            &self.tokenizer,
            &self.generate,
        )?;
        let n = out.rewards.len().max(1) as f64;
        let reward = out.rewards.iter().sum::<f64>() / n;
        let best: f64 = out
            .rewards
            .chunks(self.generate.num_return.max(1))
            .map(|c| c.first().copied().unwrap_or(0.0))
            .sum::<f64>()
            / references.len().max(1) as f64;
        Ok(TaskLosses {
            values: BTreeMap::from([
                ("loss_scst".to_string(), metric(&out.loss)),
                (
                    "reward_cider".to_string(),
                    metric_value(reward, self.device),
                ),
                (
                    "reward_cider_top_beam".to_string(),
                    metric_value(best, self.device),
                ),
            ]),
            total: out.loss,
        })
    }
}
