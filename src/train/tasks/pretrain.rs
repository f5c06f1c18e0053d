//! Pre-training as a task: ITC + ITM + MLM + PrefixLM with the momentum model and feature queues
//! ([`super::super::objectives`]), on caption samples. Retrieval fine-tuning is the same task with
//! ITC + ITM only, one sample per caption, the image index as the positives' key (reference §3.4,
//! `retrieval_img_mplug.py`: loss = ITC + ITM, momentum distillation, queues).

use std::collections::BTreeMap;

use tch::nn::VarStore;
use tch::{Device, Tensor};

use crate::error::Result;
use crate::eval::task_model::TaskParts;
use crate::loader::HostBatch;
use crate::loader::rng::{LoaderRng, Purpose};
use crate::loader::sample::SampleKind;
use crate::model::MplugModel;
use crate::train::config::TrainConfig;
use crate::train::momentum::{FeatureQueues, MomentumModel};
use crate::train::objectives::{self, ObjectiveSwitches, PretrainInputs};
use crate::train::schedule::alpha_at;
use crate::train::task::{StepContext, TaskLosses, TrainTask, metric_value};

/// The pre-training state besides the model.
pub struct PretrainTask {
    momentum: MomentumModel,
    queues: FeatureQueues,
    mlm_probability: f64,
    kind: SampleKind,
    parts: TaskParts,
    device: Device,
}

impl PretrainTask {
    /// Copies the model in `vs` into a momentum model and makes empty queues.
    pub fn new(vs: &VarStore, cfg: &TrainConfig, device: Device) -> Result<Self> {
        Self::with_kind(vs, cfg, device, SampleKind::Caption)
    }

    /// The same on samples of `kind` (retrieval: [`SampleKind::CaptionEach`]).
    pub fn with_kind(
        vs: &VarStore,
        cfg: &TrainConfig,
        device: Device,
        kind: SampleKind,
    ) -> Result<Self> {
        Ok(PretrainTask {
            momentum: MomentumModel::new(vs, &cfg.model, device)?,
            queues: FeatureQueues::new(cfg.model.embed_dim, cfg.queue_size, device),
            mlm_probability: if cfg.mlm_task {
                cfg.mlm_probability
            } else {
                0.0
            },
            kind,
            parts: TaskParts::Retrieval,
            device,
        })
    }
}

/// Host batch → model inputs (on the device).
fn inputs(
    b: &HostBatch,
    cfg: &TrainConfig,
    device: Device,
    prefix_rng: impl FnMut(usize) -> LoaderRng,
) -> PretrainInputs {
    let t = b.to_tensors(device, true);
    let (bsz, l) = (b.batch as i64, b.seq_len as i64);
    // With MLM on, the loader's ids are the masked ones; ITC/ITM/PrefixLM read the captions.
    let captions = b.caption_ids();
    let (input_ids, mlm) = match &t.mlm_labels {
        Some(lt) => (
            Tensor::from_slice(&captions)
                .view([bsz, l])
                .to_device(device),
            Some((t.input_ids.shallow_clone(), lt.shallow_clone())),
        ),
        None => (t.input_ids.shallow_clone(), None),
    };
    let prefix = cfg.prefix_task.then(|| {
        let s = objectives::prefix_split(&captions, b.seq_len, prefix_rng);
        let t2 = |v: &[i64], len: usize| {
            Tensor::from_slice(v)
                .view([bsz, len as i64])
                .to_device(device)
        };
        [
            t2(&s.prefix_ids, s.prefix_len),
            t2(&s.prefix_mask, s.prefix_len),
            t2(&s.decoder_ids, s.decoder_len),
            t2(&s.decoder_mask, s.decoder_len),
            t2(&s.decoder_labels, s.decoder_len),
        ]
    });
    PretrainInputs {
        images: t.images,
        input_ids,
        attention_mask: t.attention_mask,
        mlm,
        idx: Tensor::from_slice(&b.sample_indices()).to_device(device),
        prefix,
    }
}

impl TrainTask for PretrainTask {
    fn sample_kind(&self) -> SampleKind {
        self.kind.clone()
    }

    fn parts(&self) -> TaskParts {
        self.parts
    }

    fn mlm_probability(&self) -> f64 {
        self.mlm_probability
    }

    fn losses(
        &mut self,
        model: &MplugModel,
        batch: &HostBatch,
        cfg: &TrainConfig,
        ctx: StepContext,
    ) -> Result<TaskLosses> {
        let x = inputs(batch, cfg, self.device, |r| {
            LoaderRng::new(
                ctx.seed,
                Purpose::Train,
                batch.keys[r].epoch,
                batch.keys[r].position,
            )
        });
        let alpha = alpha_at(
            cfg.alpha,
            cfg.warm_up,
            ctx.epoch,
            ctx.iter,
            ctx.iters_per_epoch,
        );
        let sw = ObjectiveSwitches {
            itc: cfg.ita_task,
            itm: cfg.itm_task,
            mlm: cfg.mlm_task,
            prefix: cfg.prefix_task,
            distill: cfg.distill,
            alpha,
            itm_mask_same_text: cfg.train.itm_mask_same_text,
        };
        let l = objectives::pretrain_losses(
            model,
            &mut self.momentum,
            (ctx.sim_rank == 0).then_some(cfg.momentum),
            &mut self.queues,
            &x,
            sw,
        )?;
        let values = BTreeMap::from([
            ("alpha".to_string(), metric_value(alpha, l.total.device())),
            ("loss_itc".to_string(), l.itc),
            ("loss_itm".to_string(), l.itm),
            ("loss_mlm".to_string(), l.mlm),
            ("loss_prefix".to_string(), l.prefix),
            ("itm_acc".to_string(), l.itm_acc),
            ("mlm_acc".to_string(), l.mlm_acc),
        ]);
        Ok(TaskLosses {
            total: l.total,
            values,
        })
    }

    fn momentum_store(&self) -> Option<&VarStore> {
        Some(&self.momentum.vs)
    }

    fn momentum_store_mut(&mut self) -> Option<&mut VarStore> {
        Some(&mut self.momentum.vs)
    }

    fn join_group(
        &mut self,
        group: std::sync::Arc<dyn crate::train::dist::Collective>,
        simulated_ranks: usize,
    ) {
        self.queues.set_group(group);
        self.queues.simulate_ranks(simulated_ranks);
    }

    fn state_tensors(&self) -> Vec<(String, Tensor)> {
        self.queues.state_tensors()
    }

    fn load_state(&mut self, tensors: &[(String, Tensor)]) -> Result<()> {
        self.queues.load_state(tensors)
    }
}
