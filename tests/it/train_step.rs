//! Whole training steps against an independent PyTorch computation
//! (tests/py/train_step_reference.py, ALBEF/mPLUG's step written from the reference doc on
//! tests/py/mplug_reference.py's functional model): the momentum update, the four objectives with
//! distillation and a queue that holds positives, the queue write, back-propagation, gradient
//! clipping and AdamW with the reference's groups, two steps so the queue, the momentum model and
//! the optimizer moments carry over.
//!
//! Everything random is fixed: the tiny BERT has no dropout, `vision_dropout` is 0, masks and the
//! PrefixLM split are inputs, and a batch of two distinct images leaves each row one ITM negative.

use std::collections::{BTreeSet, HashMap};
use std::process::Command;

use crate::common::{ok, python, repo};
use mplug::loader::rng::{LoaderRng, Purpose};
use mplug::model::weights::{named_variables, write_safetensors};
use mplug::model::{MplugConfig, MplugModel};
use mplug::train::momentum::{FeatureQueues, MomentumModel};
use mplug::train::objectives::{ObjectiveSwitches, PretrainInputs, prefix_split, pretrain_losses};
use mplug::train::optim::AdamW;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

const STEPS: usize = 2;
const MOMENTUM: f64 = 0.9;
const ALPHA: f64 = 0.4;
const CLIP: f64 = 1.0;
const LR1: f64 = 1e-3;
const LR2: f64 = 5e-4;
const WEIGHT_DECAY: f64 = 0.02;
const EPS: f64 = 1e-5;

fn ids(rows: &[&[i64]], len: usize) -> Tensor {
    let mut flat = Vec::new();
    for r in rows {
        flat.extend_from_slice(r);
        flat.extend(std::iter::repeat_n(0, len - r.len()));
    }
    Tensor::from_slice(&flat).view([rows.len() as i64, len as i64])
}

fn max_abs(a: &Tensor, b: &Tensor) -> f64 {
    (a.to_kind(Kind::Double) - b.to_kind(Kind::Double))
        .abs()
        .max()
        .double_value(&[])
}

fn scale(a: &Tensor) -> f64 {
    a.to_kind(Kind::Double).abs().max().double_value(&[])
}

#[test]
fn two_training_steps_equal_the_pytorch_reference_steps() {
    let (mut cfg, _) = MplugConfig::from_yaml(&repo().join("configs/pretrain_tiny.yaml")).unwrap();
    assert_eq!(cfg.bert.hidden_dropout_prob, 0.0);
    assert_eq!(cfg.bert.attention_probs_dropout_prob, 0.0);
    cfg.vision.dropout = 0.0;
    let dev = Device::Cpu;
    tch::manual_seed(11);
    let vs = VarStore::new(dev);
    let model = MplugModel::new(&vs.root(), &cfg);
    let mut momentum = MomentumModel::new(&vs, &cfg, dev).unwrap();
    // A momentum model that differs from the student, so the EMA is visible in the result.
    tch::no_grad(|| {
        for (_, mut v) in named_variables(&momentum.vs) {
            let noise = v.randn_like() * 0.02;
            let _ = v.g_add_(&noise);
        }
    });
    let mut queues = FeatureQueues::new(cfg.embed_dim, 4, dev);
    // Queue entry 3 holds image 1: a second positive for row 1 from the first step on.
    let _ = queues.idx.narrow(1, 3, 1).fill_(1);

    let images = Tensor::randn([2, 3, 32, 32], (Kind::Float, dev));
    let caption: [&[i64]; 2] = [
        &[101, 1037, 2417, 4418, 2006, 1037, 2317, 4281],
        &[101, 1037, 2665, 2675, 1998, 1037, 3756],
    ];
    let input_ids = ids(&caption, 9);
    let attention_mask = input_ids.ne(0).to_kind(Kind::Int64);
    let mlm_input_ids = ids(
        &[
            &[101, 103, 2417, 4418, 2006, 103, 2317, 4281],
            &[101, 1037, 2665, 103, 1998, 1037, 7592],
        ],
        9,
    );
    let mlm_labels = ids(
        &[
            &[-100, 1037, -100, -100, -100, 1037, -100, -100],
            &[-100, -100, -100, 2675, -100, -100, 3756],
        ],
        9,
    )
    .masked_fill(&attention_mask.eq(0), -100);
    let flat: Vec<i64> = Vec::<i64>::try_from(input_ids.view([-1])).unwrap();
    let split = prefix_split(&flat, 9, |r| LoaderRng::new(5, Purpose::Train, 0, r as u64));
    let t2 = |v: &[i64], len: usize| Tensor::from_slice(v).view([2, len as i64]);
    let x = PretrainInputs {
        images: images.shallow_clone(),
        input_ids: input_ids.shallow_clone(),
        attention_mask: attention_mask.shallow_clone(),
        mlm: Some((mlm_input_ids.shallow_clone(), mlm_labels.shallow_clone())),
        idx: Tensor::from_slice(&[0i64, 1]),
        prefix: Some([
            t2(&split.prefix_ids, split.prefix_len),
            t2(&split.prefix_mask, split.prefix_len),
            t2(&split.decoder_ids, split.decoder_len),
            t2(&split.decoder_mask, split.decoder_len),
            t2(&split.decoder_labels, split.decoder_len),
        ]),
    };

    let dir = tempfile::tempdir().unwrap();
    let mut before = named_variables(&vs);
    for (n, t) in named_variables(&momentum.vs) {
        before.push((format!("m.{n}"), t));
    }
    before.extend(queues.state_tensors());
    let [p_ids, p_mask, d_ids, d_mask, d_labels] = x.prefix.as_ref().unwrap();
    for (n, t) in [
        ("images", &x.images),
        ("input_ids", &x.input_ids),
        ("attention_mask", &x.attention_mask),
        ("idx", &x.idx),
        ("mlm_input_ids", &mlm_input_ids),
        ("mlm_labels", &mlm_labels),
        ("prefix_ids", p_ids),
        ("prefix_mask", p_mask),
        ("decoder_ids", d_ids),
        ("decoder_mask", d_mask),
        ("decoder_labels", d_labels),
    ] {
        before.push((n.to_string(), t.shallow_clone()));
    }
    for (n, v) in [
        ("steps", STEPS as f64),
        ("momentum", MOMENTUM),
        ("alpha", ALPHA),
        ("clip", CLIP),
        ("lr1", LR1),
        ("lr2", LR2),
        ("weight_decay", WEIGHT_DECAY),
        ("eps", EPS),
        ("vision_width", cfg.vision.width as f64),
        ("vision_layers", cfg.vision.layers as f64),
        ("vision_heads", cfg.vision.heads as f64),
        ("patch", cfg.vision.patch_size as f64),
        ("image_res", cfg.vision.image_res as f64),
        ("embed_dim", cfg.embed_dim as f64),
    ] {
        before.push((format!("hp.{n}"), Tensor::from_slice(&[v])));
    }
    // Copies: the step changes the variables in place.
    let before: Vec<(String, Tensor)> = before.into_iter().map(|(n, t)| (n, t.copy())).collect();
    let before_path = dir.path().join("before.safetensors");
    write_safetensors(&before_path, &before).unwrap();

    // The trainer's step, by the library calls it makes (src/train/trainer.rs).
    let dormant = model.dormant_parameter_prefixes();
    let params: Vec<(String, Tensor)> = named_variables(&vs)
        .into_iter()
        .filter(|(n, _)| !dormant.iter().any(|d| n.starts_with(d)))
        .collect();
    let mut opt = AdamW::new(params, WEIGHT_DECAY);
    opt.eps = EPS;
    let sw = ObjectiveSwitches {
        itc: true,
        itm: true,
        mlm: true,
        prefix: true,
        distill: true,
        alpha: ALPHA,
        itm_mask_same_text: false,
    };
    let mut losses = Vec::new();
    let mut norms = Vec::new();
    let mut grads = HashMap::new();
    for step in 0..STEPS {
        opt.zero_grad();
        let l = pretrain_losses(&model, &mut momentum, MOMENTUM, &mut queues, &x, sw);
        l.total.backward();
        norms.push(opt.clip_grad_norm(CLIP));
        losses.push([l.itc, l.itm, l.mlm, l.prefix]);
        if step + 1 == STEPS {
            for (n, p) in named_variables(&vs) {
                let g = p.grad();
                if g.defined() {
                    grads.insert(n, g.copy());
                }
            }
        }
        opt.step(LR1, LR2);
    }

    let after_path = dir.path().join("after.safetensors");
    ok(Command::new(python())
        .current_dir(repo().join("tests/py"))
        .arg("train_step_reference.py")
        .arg(&before_path)
        .arg(&after_path)
        .arg(repo().join("configs/config_bert_tiny.json"))
        .output()
        .unwrap());
    let want: HashMap<String, Tensor> = Tensor::read_safetensors(&after_path)
        .unwrap()
        .into_iter()
        .collect();

    let want_loss = Vec::<f64>::try_from(want["loss"].view([-1])).unwrap();
    let want_norm = Vec::<f64>::try_from(&want["grad_norm"]).unwrap();
    for step in 0..STEPS {
        for (k, name) in ["ITC", "ITM", "MLM", "PrefixLM"].iter().enumerate() {
            let (got, w) = (losses[step][k], want_loss[step * 4 + k]);
            assert!(
                (got - w).abs() < 1e-5 * w.abs().max(1.0),
                "step {step} {name}: {got} vs {w}"
            );
        }
        assert!(
            (norms[step] - want_norm[step]).abs() < 1e-5 * want_norm[step],
            "step {step} grad norm {} vs {}",
            norms[step],
            want_norm[step]
        );
    }
    // Clipping is active (the norm is above CLIP), so the updates are the clipped ones.
    assert!(want_norm.iter().all(|&n| n > CLIP), "{want_norm:?}");

    // Gradients of the last step, relative to each tensor's largest entry.
    let want_grads: BTreeSet<&str> = want.keys().filter_map(|k| k.strip_prefix("g.")).collect();
    let got_grads: BTreeSet<&str> = grads.keys().map(String::as_str).collect();
    assert_eq!(got_grads, want_grads, "the same parameters get gradients");
    for (n, g) in &grads {
        let w = &want[&format!("g.{n}")];
        let d = max_abs(g, w);
        assert!(
            d <= 1e-3 * scale(w) + 1e-9,
            "gradient of {n}: max diff {d:e}, scale {:e}",
            scale(w)
        );
    }
    // Parameters after two AdamW steps, the momentum model after two EMA steps. AdamW divides by
    // the gradient's own root plus eps, so a gradient error e moves a parameter by up to lr·e/eps:
    // with torch's eps 1e-8 the float noise of near-zero gradients (attention key biases have
    // none in exact arithmetic; both sides hold ~1e-10 there) becomes ~1e-5, and the fp32 noise
    // (~1e-9) of a gradient of 1e-2 up to 1e-6. eps 1e-5 on both sides keeps those near 1e-7, so
    // a tolerance of 1e-6 still sees a missed weight decay (lr·wd·|p| ≈ 4e-6 per step).
    for (n, p) in named_variables(&vs) {
        let d = max_abs(&p, &want[&n]);
        assert!(d < 1e-6, "parameter {n}: max diff {d:e}");
        let dm = max_abs(&momentum.vs.variables()[&n], &want[&format!("m.{n}")]);
        assert!(dm < 1e-6, "momentum parameter {n}: max diff {dm:e}");
    }
    let moved = max_abs(&named_variables(&vs)[0].1, &before[0].1);
    assert!(moved > 1e-4, "the first parameter moved by {moved}");
    for (n, t) in queues.state_tensors() {
        let d = max_abs(&t, &want[&n]);
        assert!(d < 1e-5, "{n}: max diff {d:e}");
    }
}

/// Two VQA fine-tuning steps (`train::tasks::vqa::vqa_loss`, then clipping and AdamW as the
/// trainer runs them) equal tests/py/vqa_step_reference.py, the reference's `vqa_mplug.py` step
/// written from the reference doc: two questions with three and one weighted answers of different
/// lengths, so the per-answer memory repeat, the PAD → −100 targets, the per-answer sum, the
/// weights and the division by questions all show in the loss, the gradients and the parameters.
#[test]
fn two_vqa_steps_equal_the_pytorch_reference_steps() {
    use mplug::loader::AnswerTensors;
    use mplug::train::tasks::vqa::vqa_loss;
    let (mut cfg, _) = MplugConfig::from_yaml(&repo().join("configs/vqa_tiny.yaml")).unwrap();
    assert_eq!(cfg.bert.hidden_dropout_prob, 0.0);
    cfg.vision.dropout = 0.0;
    let dev = Device::Cpu;
    tch::manual_seed(12);
    let vs = VarStore::new(dev);
    let model = MplugModel::new(&vs.root(), &cfg);
    let images = Tensor::randn([2, 3, 32, 32], (Kind::Float, dev));
    let question_ids = ids(
        &[&[101, 2054, 3609, 2003, 1996, 4418], &[101, 2129, 2116]],
        6,
    );
    let question_mask = question_ids.ne(0).to_kind(Kind::Int64);
    let answer_ids = ids(
        &[
            &[101, 2417, 102],
            &[101, 2630, 102],
            &[101, 2665, 2417, 102],
            &[101, 2048, 102],
        ],
        4,
    );
    let answers = AnswerTensors {
        mask: answer_ids.ne(0).to_kind(Kind::Int64),
        ids: answer_ids.shallow_clone(),
        weights: Tensor::from_slice(&[0.6f32, 0.3, 0.1, 1.0]),
        counts: Tensor::from_slice(&[3i64, 1]),
    };
    let dir = tempfile::tempdir().unwrap();
    let mut before = named_variables(&vs);
    for (n, t) in [
        ("images", &images),
        ("question_ids", &question_ids),
        ("question_mask", &question_mask),
        ("answer_ids", &answers.ids),
        ("answer_mask", &answers.mask),
        ("weights", &answers.weights),
        ("counts", &answers.counts),
    ] {
        before.push((n.to_string(), t.shallow_clone()));
    }
    for (n, v) in [
        ("steps", STEPS as f64),
        ("clip", CLIP),
        ("lr1", LR1),
        ("lr2", LR2),
        ("weight_decay", WEIGHT_DECAY),
        ("eps", EPS),
        ("vision_width", cfg.vision.width as f64),
        ("vision_layers", cfg.vision.layers as f64),
        ("vision_heads", cfg.vision.heads as f64),
        ("patch", cfg.vision.patch_size as f64),
        ("image_res", cfg.vision.image_res as f64),
        ("embed_dim", cfg.embed_dim as f64),
    ] {
        before.push((format!("hp.{n}"), Tensor::from_slice(&[v])));
    }
    let before: Vec<(String, Tensor)> = before.into_iter().map(|(n, t)| (n, t.copy())).collect();
    let before_path = dir.path().join("before.safetensors");
    write_safetensors(&before_path, &before).unwrap();

    let dormant = model.dormant_parameter_prefixes();
    let params: Vec<(String, Tensor)> = named_variables(&vs)
        .into_iter()
        .filter(|(n, _)| !dormant.iter().any(|d| n.starts_with(d)))
        .collect();
    let mut opt = AdamW::new(params, WEIGHT_DECAY);
    opt.eps = EPS;
    let (mut losses, mut norms, mut grads) = (Vec::new(), Vec::new(), HashMap::new());
    for step in 0..STEPS {
        opt.zero_grad();
        let loss = vqa_loss(
            &model,
            &images,
            &question_ids,
            &question_mask,
            &answers,
            true,
        );
        loss.backward();
        norms.push(opt.clip_grad_norm(CLIP));
        losses.push(loss.double_value(&[]));
        if step + 1 == STEPS {
            for (n, p) in named_variables(&vs) {
                let g = p.grad();
                if g.defined() && g.abs().max().double_value(&[]) > 0.0 {
                    grads.insert(n, g.copy());
                }
            }
        }
        opt.step(LR1, LR2);
    }
    let after_path = dir.path().join("after.safetensors");
    ok(Command::new(python())
        .current_dir(repo().join("tests/py"))
        .arg("vqa_step_reference.py")
        .arg(&before_path)
        .arg(&after_path)
        .arg(repo().join("configs/config_bert_tiny.json"))
        .output()
        .unwrap());
    let want: HashMap<String, Tensor> = Tensor::read_safetensors(&after_path)
        .unwrap()
        .into_iter()
        .collect();
    let want_loss = Vec::<f64>::try_from(&want["loss"]).unwrap();
    let want_norm = Vec::<f64>::try_from(&want["grad_norm"]).unwrap();
    for step in 0..STEPS {
        let (got, w) = (losses[step], want_loss[step]);
        assert!(
            (got - w).abs() < 1e-5 * w.abs().max(1.0),
            "step {step} loss: {got} vs {w}"
        );
        assert!(
            (norms[step] - want_norm[step]).abs() < 1e-5 * want_norm[step],
            "step {step} grad norm {} vs {}",
            norms[step],
            want_norm[step]
        );
    }
    assert!(want_norm.iter().all(|&n| n > CLIP), "{want_norm:?}");
    assert!(want_loss[1] < want_loss[0], "the loss falls: {want_loss:?}");
    // Parameters that got a (non-zero) gradient on both sides.
    let want_grads: BTreeSet<&str> = want
        .iter()
        .filter(|(k, g)| k.starts_with("g.") && g.abs().max().double_value(&[]) > 0.0)
        .map(|(k, _)| &k[2..])
        .collect();
    let got_grads: BTreeSet<&str> = grads.keys().map(String::as_str).collect();
    assert_eq!(got_grads, want_grads, "the same parameters get gradients");
    assert!(got_grads.iter().any(|n| n.starts_with("visual_encoder.")));
    assert!(got_grads.iter().any(|n| n.starts_with("text_decoder.")));
    for (n, g) in &grads {
        let w = &want[&format!("g.{n}")];
        let d = max_abs(g, w);
        assert!(
            d <= 1e-3 * scale(w) + 1e-9,
            "gradient of {n}: max diff {d:e}, scale {:e}",
            scale(w)
        );
    }
    for (n, p) in named_variables(&vs) {
        let d = max_abs(&p, &want[&n]);
        assert!(d < 1e-6, "parameter {n}: max diff {d:e}");
    }
}

/// Two caption fine-tuning steps of two accumulated micro-batches each
/// (`train::tasks::caption::caption_loss`, each divided by the accumulation before backward, then
/// clipping and AdamW, as the trainer runs them) equal tests/py/caption_step_reference.py, the
/// reference's `caption_mplug.py` step written from the reference doc: the decoder over the visual
/// tokens only, BertPrefixModel's mean token CE with PAD → −100.
#[test]
fn two_caption_steps_equal_the_pytorch_reference_steps() {
    use mplug::train::tasks::caption::caption_loss;
    const ACCUM: usize = 2;
    let (mut cfg, _) = MplugConfig::from_yaml(&repo().join("configs/caption_tiny.yaml")).unwrap();
    cfg.vision.dropout = 0.0;
    let dev = Device::Cpu;
    tch::manual_seed(13);
    let vs = VarStore::new(dev);
    let model = MplugModel::new(&vs.root(), &cfg);
    let images = Tensor::randn([2, 3, 32, 32], (Kind::Float, dev));
    let caption_ids = ids(
        &[
            &[101, 1037, 2417, 4418, 2006, 1037, 2317, 4281, 1012, 102],
            &[101, 1037, 2665, 2675, 102],
        ],
        10,
    );
    let mask = caption_ids.ne(0).to_kind(Kind::Int64);
    let dir = tempfile::tempdir().unwrap();
    let mut before = named_variables(&vs);
    for (n, t) in [("images", &images), ("ids", &caption_ids), ("mask", &mask)] {
        before.push((n.to_string(), t.shallow_clone()));
    }
    for (n, v) in [
        ("steps", STEPS as f64),
        ("accum", ACCUM as f64),
        ("clip", CLIP),
        ("lr1", LR1),
        ("lr2", LR2),
        ("weight_decay", WEIGHT_DECAY),
        ("eps", EPS),
        ("vision_width", cfg.vision.width as f64),
        ("vision_layers", cfg.vision.layers as f64),
        ("vision_heads", cfg.vision.heads as f64),
        ("patch", cfg.vision.patch_size as f64),
        ("image_res", cfg.vision.image_res as f64),
        ("embed_dim", cfg.embed_dim as f64),
    ] {
        before.push((format!("hp.{n}"), Tensor::from_slice(&[v])));
    }
    let before: Vec<(String, Tensor)> = before.into_iter().map(|(n, t)| (n, t.copy())).collect();
    let before_path = dir.path().join("before.safetensors");
    write_safetensors(&before_path, &before).unwrap();

    let dormant = model.dormant_parameter_prefixes();
    let params: Vec<(String, Tensor)> = named_variables(&vs)
        .into_iter()
        .filter(|(n, _)| !dormant.iter().any(|d| n.starts_with(d)))
        .collect();
    let mut opt = AdamW::new(params, WEIGHT_DECAY);
    opt.eps = EPS;
    let (mut losses, mut norms, mut grads) = (Vec::new(), Vec::new(), HashMap::new());
    for step in 0..STEPS {
        opt.zero_grad();
        for _ in 0..ACCUM {
            let loss = caption_loss(&model, &images, &caption_ids, &mask, true);
            (&loss / ACCUM as f64).backward();
            losses.push(loss.double_value(&[]));
        }
        norms.push(opt.clip_grad_norm(CLIP));
        if step + 1 == STEPS {
            for (n, p) in named_variables(&vs) {
                let g = p.grad();
                if g.defined() && g.abs().max().double_value(&[]) > 0.0 {
                    grads.insert(n, g.copy());
                }
            }
        }
        opt.step(LR1, LR2);
    }
    let after_path = dir.path().join("after.safetensors");
    ok(Command::new(python())
        .current_dir(repo().join("tests/py"))
        .arg("caption_step_reference.py")
        .arg(&before_path)
        .arg(&after_path)
        .arg(repo().join("configs/config_bert_tiny.json"))
        .output()
        .unwrap());
    let want: HashMap<String, Tensor> = Tensor::read_safetensors(&after_path)
        .unwrap()
        .into_iter()
        .collect();
    let want_loss = Vec::<f64>::try_from(&want["loss"]).unwrap();
    let want_norm = Vec::<f64>::try_from(&want["grad_norm"]).unwrap();
    assert_eq!(losses.len(), want_loss.len());
    for (k, (got, w)) in losses.iter().zip(&want_loss).enumerate() {
        assert!(
            (got - w).abs() < 1e-5 * w.abs().max(1.0),
            "micro-batch {k}: {got} vs {w}"
        );
    }
    for step in 0..STEPS {
        assert!(
            (norms[step] - want_norm[step]).abs() < 1e-5 * want_norm[step],
            "step {step} grad norm {} vs {}",
            norms[step],
            want_norm[step]
        );
    }
    assert!(want_norm.iter().all(|&n| n > CLIP), "{want_norm:?}");
    let want_grads: BTreeSet<&str> = want
        .iter()
        .filter(|(k, g)| k.starts_with("g.") && g.abs().max().double_value(&[]) > 0.0)
        .map(|(k, _)| &k[2..])
        .collect();
    let got_grads: BTreeSet<&str> = grads.keys().map(String::as_str).collect();
    assert_eq!(got_grads, want_grads, "the same parameters get gradients");
    assert!(
        !got_grads.iter().any(|n| n.starts_with("text_encoder.")),
        "captioning runs no text encoder"
    );
    for (n, g) in &grads {
        let w = &want[&format!("g.{n}")];
        let d = max_abs(g, w);
        assert!(
            d <= 1e-3 * scale(w) + 1e-9,
            "gradient of {n}: max diff {d:e}, scale {:e}",
            scale(w)
        );
    }
    for (n, p) in named_variables(&vs) {
        let d = max_abs(&p, &want[&n]);
        assert!(d < 1e-6, "parameter {n}: max diff {d:e}");
    }
}
