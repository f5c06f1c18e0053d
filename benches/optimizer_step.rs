//! AdamW with flat buckets against the per-tensor step, side by side (issue 20): gradient-norm
//! clipping (active) and one AdamW step over every parameter of a model, gradients in place.
//!
//!   cargo bench --bench optimizer_step            # the tiny model (configs/pretrain_tiny.yaml)
//!   MPLUG_BENCH_CONFIG=configs/mplug_base.yaml cargo bench --bench optimizer_step
//!
//! The per-tensor optimiser runs the same kernels on each parameter (≈ 10 launches × tensors);
//! the flat one runs them once per bucket (4 groups × dtype × device).

use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use mplug::model::weights::named_variables;
use mplug::model::{MplugConfig, MplugModel};
use mplug::train::optim::AdamW;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

/// A model with a gradient on every parameter, and its optimiser.
fn setup(per_tensor: bool) -> (VarStore, AdamW) {
    let config = std::env::var("MPLUG_BENCH_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs/pretrain_tiny.yaml")
        });
    let (cfg, _) = MplugConfig::from_yaml(&config).expect("model config");
    tch::manual_seed(0);
    let vs = VarStore::new(Device::Cpu);
    let _model = MplugModel::new(&vs.root(), &cfg);
    let opt = if per_tensor {
        AdamW::per_tensor(named_variables(&vs), 0.02)
    } else {
        AdamW::new(named_variables(&vs), 0.02)
    };
    let loss = named_variables(&vs)
        .iter()
        .map(|(_, p)| p.square().sum(Kind::Float))
        .fold(Tensor::from(0.0f32), |a, b| a + b);
    loss.backward();
    (vs, opt)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("adamw_clip_step");
    for (name, per_tensor) in [("per_tensor", true), ("flat_buckets", false)] {
        let (vs, mut opt) = setup(per_tensor);
        let tensors = vs.trainable_variables().len();
        g.bench_function(format!("{name}/{tensors}_tensors"), |b| {
            b.iter(|| {
                let n = opt.clip_grad_norm(1e-3);
                opt.step(1e-5, 1e-5);
                n
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
