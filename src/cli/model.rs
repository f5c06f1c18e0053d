//! `mplug model info|init`, `mplug convert`, `mplug forward`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use tch::nn::VarStore;
use tch::{Device, Tensor};

use crate::model::generate::GenerateConfig;
use crate::model::io::{MODULES, run_module};
use crate::model::summary::summarize;
use crate::model::weights::{
    LoadOptions, load_state_dict, named_variables, read_weights, write_safetensors,
};
use crate::model::{MplugConfig, MplugModel};

/// Where to run.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DeviceArg {
    /// CUDA if available, else CPU.
    Auto,
    /// CPU.
    Cpu,
    /// The first CUDA device.
    Cuda,
}

impl DeviceArg {
    pub(crate) fn device(self) -> anyhow::Result<Device> {
        Ok(match self {
            DeviceArg::Auto => Device::cuda_if_available(),
            DeviceArg::Cpu => Device::Cpu,
            DeviceArg::Cuda => {
                anyhow::ensure!(
                    tch::Cuda::is_available(),
                    "--device cuda: CUDA is not available"
                );
                Device::Cuda(0)
            }
        })
    }
}

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Print parameter counts per module (total and running) for a config.
    Info(InfoArgs),
    /// Write freshly initialised weights (BERT/CLIP-style init, seeded) as safetensors.
    Init(InitArgs),
    /// Time forward+backward of a VQA-style training step (ViT → text encoder → fusion → decoder LM
    /// loss + ITM loss) on random inputs; compare with benches/torch_model.py on the same machine.
    Bench(BenchArgs),
}

/// Precision of `mplug model bench`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DtypeArg {
    /// fp32 weights and activations.
    Fp32,
    /// bf16 weights and activations (LayerNorms in fp32), for CUDA.
    Bf16,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Model config.
    #[arg(long)]
    config: PathBuf,
    /// Override image_res.
    #[arg(long)]
    image_res: Option<i64>,
    /// Images per step.
    #[arg(long, default_value_t = 4)]
    batch: i64,
    /// Question and answer length in tokens.
    #[arg(long, default_value_t = 16)]
    text_len: i64,
    /// Timed steps (after --warmup untimed ones).
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// Untimed warm-up steps.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Device.
    #[arg(long, value_enum, default_value_t = DeviceArg::Auto)]
    device: DeviceArg,
    /// Precision.
    #[arg(long, value_enum, default_value_t = DtypeArg::Fp32)]
    dtype: DtypeArg,
    /// Dropout off (the PyTorch baseline script runs without dropout).
    #[arg(long)]
    no_dropout: bool,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Model config (configs/mplug_base.yaml, configs/mplug_large.yaml, configs/tiny.yaml).
    #[arg(long)]
    config: PathBuf,
    /// Override image_res (sets the positional table length).
    #[arg(long)]
    image_res: Option<i64>,
    /// Also list every parameter name and shape.
    #[arg(long)]
    keys: bool,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Model config.
    #[arg(long)]
    config: PathBuf,
    /// Output .safetensors file.
    #[arg(long)]
    out: PathBuf,
    /// Seed of the initialisation.
    #[arg(long, default_value_t = 0)]
    seed: i64,
}

/// Convert a PyTorch checkpoint (.pth/.pt/.bin zip, read without Python) to safetensors.
///
/// Applies the reference's load-time transforms: takes `model` (or `module`), renames pretrained keys
/// (`text_encoder.bert.` → `text_encoder.`, `fusion_encoder.fusion.` → `fusion_encoder.`) and, with
/// --config, resizes the positional table to the config's image_res and reports missing/unexpected/
/// ignored keys. Without --config every tensor is written unchanged.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// Input checkpoint (`torch.save` zip format).
    input: PathBuf,
    /// Output .safetensors.
    output: PathBuf,
    /// Model config: keep only the model's parameters, transformed, and check them.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Override image_res of the config.
    #[arg(long)]
    image_res: Option<i64>,
    /// Accept a checkpoint that lacks some parameters (they keep their initialisation).
    #[arg(long)]
    allow_missing: bool,
    /// Accept keys the model does not know.
    #[arg(long)]
    allow_unexpected: bool,
}

/// Run the model or one module on tensors from a safetensors file; write every named output.
#[derive(Debug, Args)]
#[command(after_help = forward_help())]
pub struct ForwardArgs {
    /// Model config.
    #[arg(long)]
    config: PathBuf,
    /// Weights (.safetensors or a PyTorch checkpoint).
    #[arg(long)]
    weights: PathBuf,
    /// Input tensors (.safetensors).
    #[arg(long)]
    inputs: PathBuf,
    /// Output .safetensors.
    #[arg(long)]
    out: PathBuf,
    /// Module to run (see below).
    #[arg(long, default_value = "mplug")]
    module: String,
    /// Override image_res of the config.
    #[arg(long)]
    image_res: Option<i64>,
    /// Device.
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    device: DeviceArg,
    /// `generate`: beams (1 = greedy).
    #[arg(long, default_value_t = 5)]
    beam_size: i64,
    /// `generate`: no EOS before this many tokens.
    #[arg(long, default_value_t = 1)]
    min_length: i64,
    /// `generate`: at most this many tokens.
    #[arg(long, default_value_t = 10)]
    max_length: i64,
    /// `generate`: hypotheses per example.
    #[arg(long, default_value_t = 1)]
    num_return: usize,
    /// `generate`: re-run the whole prefix every step as the reference does, instead of the
    /// key/value cache.
    #[arg(long)]
    no_kv_cache: bool,
    /// Accept weights that lack some parameters.
    #[arg(long)]
    allow_missing: bool,
    /// Accept weight keys the model does not know.
    #[arg(long)]
    allow_unexpected: bool,
}

fn forward_help() -> String {
    let mut s = String::from("Modules:\n");
    for m in MODULES {
        s.push_str(&format!(
            "  {:<15} inputs: {}\n  {:<15} outputs: {}\n",
            m.name,
            m.inputs.join(", "),
            "",
            m.outputs
        ));
    }
    s
}

fn load_config(path: &Path, image_res: Option<i64>) -> anyhow::Result<MplugConfig> {
    let (mut cfg, warnings) = MplugConfig::from_yaml(path)?;
    for w in warnings {
        eprintln!("warning: {w}");
    }
    if let Some(r) = image_res {
        cfg.vision.image_res = r;
        cfg.validate().map_err(crate::Error::input)?;
    }
    Ok(cfg)
}

fn build(cfg: &MplugConfig, device: Device) -> (VarStore, MplugModel) {
    let vs = VarStore::new(device);
    let model = MplugModel::new(&vs.root(), cfg);
    (vs, model)
}

pub fn run_model(cmd: ModelCommand) -> anyhow::Result<()> {
    match cmd {
        ModelCommand::Info(a) => {
            let cfg = load_config(&a.config, a.image_res)?;
            tch::manual_seed(0);
            let (vs, model) = build(&cfg, Device::Cpu);
            let sum = summarize(&vs, &model);
            println!("{:<16} {:>14}", "module", "parameters");
            for (g, n) in &sum.groups {
                println!("{g:<16} {n:>14}");
            }
            println!("{:<16} {:>14}", "total", sum.total);
            println!(
                "{:<16} {:>14}  (visual + bridge + text encoder + running fusion + decoder, \
                 as the reference counts; CLIP proj not built)",
                "reference", sum.reference_total
            );
            println!(
                "{:<16} {:>14}  (receive gradients: total minus dormant connected-layer cross-attention)",
                "trainable", sum.trainable_running
            );
            if a.keys {
                for (name, t) in named_variables(&vs) {
                    println!("{name} {:?}", t.size());
                }
            }
            Ok(())
        }
        ModelCommand::Bench(a) => run_bench(a),
        ModelCommand::Init(a) => {
            let cfg = load_config(&a.config, None)?;
            tch::manual_seed(a.seed);
            let (vs, _model) = build(&cfg, Device::Cpu);
            write_safetensors(&a.out, &named_variables(&vs))?;
            eprintln!("wrote {}", a.out.display());
            Ok(())
        }
    }
}

fn run_bench(a: BenchArgs) -> anyhow::Result<()> {
    use tch::Kind;
    let device = a.device.device()?;
    let cfg = load_config(&a.config, a.image_res)?;
    tch::manual_seed(0);
    let (mut vs, model) = build(&cfg, device);
    let kind = match a.dtype {
        DtypeArg::Fp32 => Kind::Float,
        DtypeArg::Bf16 => {
            vs.bfloat16();
            Kind::BFloat16
        }
    };
    let (b, l, res) = (a.batch, a.text_len, cfg.vision.image_res);
    let image = Tensor::randn([b, 3, res, res], (kind, device));
    let vocab = cfg.bert.vocab_size;
    let ids = Tensor::randint_low(1000, vocab, [b, l], (Kind::Int64, device));
    let mask = Tensor::ones([b, l], (Kind::Int64, device));
    let itm_labels = Tensor::randint(2, [b], (Kind::Int64, device));
    let train = !a.no_dropout;
    let step = || {
        let v = model.encode_image(&image, train);
        let t = model.encode_text(&ids, &mask, train);
        let (fv, ft) = model.fuse(&v, &t, &mask, train);
        let (mem, mem_mask) = MplugModel::decoder_memory(&fv, &ft, &mask);
        let logits = model.decode(&ids, &mask, &mem, &mem_mask, train);
        // logits[:, :-1] predict ids[:, 1:] (reference §2.4)
        let lm = logits
            .narrow(1, 0, l - 1)
            .reshape([-1, vocab])
            .to_kind(Kind::Float)
            .cross_entropy_for_logits(&ids.narrow(1, 1, l - 1).reshape([-1]));
        let itm = model
            .itm_logits(&ft)
            .to_kind(Kind::Float)
            .cross_entropy_for_logits(&itm_labels);
        let loss = lm + itm;
        loss.backward();
        for mut t in vs.trainable_variables() {
            t.zero_grad();
        }
    };
    let sync = || {
        if let Device::Cuda(i) = device {
            tch::Cuda::synchronize(i as i64);
        }
    };
    for _ in 0..a.warmup {
        step();
    }
    sync();
    let mut times = Vec::new();
    for _ in 0..a.steps {
        let t0 = std::time::Instant::now();
        step();
        sync();
        times.push(t0.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "{{\"impl\": \"mplug-tch\", \"config\": \"{}\", \"device\": \"{device:?}\", \"dtype\": \"{:?}\", \
         \"image_res\": {res}, \"batch\": {b}, \"text_len\": {l}, \"threads\": {}, \
         \"dropout\": {train}, \"median_step_s\": {median:.4}, \"samples_per_s\": {:.2}}}",
        a.config.display(),
        a.dtype,
        tch::get_num_threads(),
        b as f64 / median
    );
    Ok(())
}

pub fn run_convert(a: ConvertArgs) -> anyhow::Result<()> {
    let (tensors, skipped) = read_weights(&a.input)
        .with_context(|| format!("Failed to read `{}`", a.input.display()))?;
    if !skipped.is_empty() {
        eprintln!("skipped {} non-tensor entries", skipped.len());
    }
    let out = match &a.config {
        None => tensors,
        Some(c) => {
            let cfg = load_config(c, a.image_res)?;
            let (vs, _model) = build(&cfg, Device::Cpu);
            let opts = LoadOptions {
                allow_missing: a.allow_missing,
                allow_unexpected: a.allow_unexpected,
            };
            let report = load_state_dict(&vs, tensors, &cfg, opts)?;
            eprint!("{report}");
            named_variables(&vs)
        }
    };
    write_safetensors(&a.output, &out)?;
    eprintln!("wrote {} tensors to {}", out.len(), a.output.display());
    Ok(())
}

pub fn run_forward(a: ForwardArgs) -> anyhow::Result<()> {
    let device = a.device.device()?;
    let cfg = load_config(&a.config, a.image_res)?;
    let (vs, model) = build(&cfg, device);
    let (tensors, _) = read_weights(&a.weights)
        .with_context(|| format!("Failed to read `{}`", a.weights.display()))?;
    let opts = LoadOptions {
        allow_missing: a.allow_missing,
        allow_unexpected: a.allow_unexpected,
    };
    let report = load_state_dict(&vs, tensors, &cfg, opts)?;
    if !report.missing.is_empty() || !report.unexpected.is_empty() {
        eprint!("{report}");
    }
    let inputs: HashMap<String, Tensor> = Tensor::read_safetensors(&a.inputs)
        .with_context(|| format!("Failed to read inputs `{}`", a.inputs.display()))?
        .into_iter()
        .collect();
    let generate = GenerateConfig {
        beam_size: a.beam_size,
        min_length: a.min_length,
        max_length: a.max_length,
        num_return: a.num_return,
        kv_cache: !a.no_kv_cache,
    };
    let outputs = run_module(&model, &a.module, &inputs, &generate, device)?;
    write_safetensors(&a.out, &outputs)?;
    let names: Vec<&str> = outputs.iter().map(|(k, _)| k.as_str()).collect();
    eprintln!("wrote {} to {}", names.join(", "), a.out.display());
    Ok(())
}
