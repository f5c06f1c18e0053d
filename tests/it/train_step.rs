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
    let params = model.trainable_variables(&vs);
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
        let l =
            pretrain_losses(&model, &mut momentum, Some(MOMENTUM), &mut queues, &x, sw).unwrap();
        l.total.backward();
        norms.push(opt.clip_grad_norm(CLIP));
        losses.push([&l.itc, &l.itm, &l.mlm, &l.prefix].map(|v| v.double_value(&[])));
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

/// The fine-tuning step tests' common part: hyper-parameters for the reference scripts, running one,
/// and comparing losses, gradient norms, gradients and parameters.
mod finetune_steps {
    use super::*;

    /// `hp.*` entries: the optimiser settings (clipping at `clip`) and the model's shape, plus
    /// `extra`.
    pub fn hyper(cfg: &MplugConfig, clip: f64, extra: &[(&str, f64)]) -> Vec<(String, Tensor)> {
        let mut out: Vec<(String, Tensor)> = [
            ("steps", STEPS as f64),
            ("clip", clip),
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
        ]
        .iter()
        .chain(extra)
        .map(|(n, v)| (format!("hp.{n}"), Tensor::from_slice(&[*v])))
        .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The trainer's optimiser over `vs` (dormant parameters left out).
    pub fn optimizer(model: &MplugModel, vs: &VarStore) -> AdamW {
        let params = model.trainable_variables(vs);
        let mut opt = AdamW::new(params, WEIGHT_DECAY);
        opt.eps = EPS;
        opt
    }

    /// Every non-zero gradient of `vs`, copied.
    pub fn gradients(vs: &VarStore) -> HashMap<String, Tensor> {
        named_variables(vs)
            .into_iter()
            .filter_map(|(n, p)| {
                let g = p.grad();
                (g.defined() && g.abs().max().double_value(&[]) > 0.0).then(|| (n, g.copy()))
            })
            .collect()
    }

    /// Runs tests/py/`script` on `before` (parameters, batch, `hp.*`) and reads what it wrote.
    pub fn reference(script: &str, before: Vec<(String, Tensor)>) -> HashMap<String, Tensor> {
        let dir = tempfile::tempdir().unwrap();
        let before: Vec<(String, Tensor)> =
            before.into_iter().map(|(n, t)| (n, t.copy())).collect();
        let (before_path, after_path) = (
            dir.path().join("before.safetensors"),
            dir.path().join("after.safetensors"),
        );
        write_safetensors(&before_path, &before).unwrap();
        ok(Command::new(python())
            .current_dir(repo().join("tests/py"))
            .arg(script)
            .arg(&before_path)
            .arg(&after_path)
            .arg(repo().join("configs/config_bert_tiny.json"))
            .output()
            .unwrap());
        Tensor::read_safetensors(&after_path)
            .unwrap()
            .into_iter()
            .collect()
    }

    /// Losses (per backward), gradient norms (per step, above `clip`), the last step's
    /// gradients (the same parameters, within 1e-3 of each tensor's scale) and the parameters
    /// after the steps (1e-6) equal the reference's.
    pub fn assert_same_steps(
        want: &HashMap<String, Tensor>,
        losses: &[f64],
        norms: &[f64],
        grads: &HashMap<String, Tensor>,
        vs: &VarStore,
        clip: f64,
    ) {
        let want_loss = Vec::<f64>::try_from(&want["loss"]).unwrap();
        let want_norm = Vec::<f64>::try_from(&want["grad_norm"]).unwrap();
        assert_eq!(losses.len(), want_loss.len());
        for (k, (got, w)) in losses.iter().zip(&want_loss).enumerate() {
            assert!(
                (got - w).abs() < 1e-5 * w.abs().max(1.0),
                "loss {k}: {got} vs {w}"
            );
        }
        assert_eq!(norms.len(), want_norm.len());
        for (k, (got, w)) in norms.iter().zip(&want_norm).enumerate() {
            assert!(
                (got - w).abs() < 1e-5 * w,
                "step {k} grad norm {got} vs {w}"
            );
        }
        assert!(
            want_norm.iter().all(|&n| n > clip),
            "clipping is active: {want_norm:?}"
        );
        let want_grads: BTreeSet<&str> = want
            .iter()
            .filter(|(k, g)| k.starts_with("g.") && g.abs().max().double_value(&[]) > 0.0)
            .map(|(k, _)| &k[2..])
            .collect();
        let got_grads: BTreeSet<&str> = grads.keys().map(String::as_str).collect();
        assert_eq!(got_grads, want_grads, "the same parameters get gradients");
        for (n, g) in grads {
            let w = &want[&format!("g.{n}")];
            let d = max_abs(g, w);
            assert!(
                d <= 1e-3 * scale(w) + 1e-9,
                "gradient of {n}: max diff {d:e}, scale {:e}",
                scale(w)
            );
        }
        for (n, p) in named_variables(vs) {
            let d = max_abs(&p, &want[&n]);
            assert!(d < 1e-6, "parameter {n}: max diff {d:e}");
        }
    }
}

/// Two VQA fine-tuning steps (`train::tasks::vqa::vqa_loss`, then clipping and AdamW as the
/// trainer runs them) equal tests/py/vqa_step_reference.py, the reference's `vqa_mplug.py` step
/// written from the reference doc: two questions with three and one weighted answers of different
/// lengths, so the per-answer memory repeat, the PAD → −100 targets, the per-answer sum, the
/// weights and the division by questions all show in the loss, the gradients and the parameters.
#[test]
fn two_vqa_steps_equal_the_pytorch_reference_steps() {
    use finetune_steps::*;
    use mplug::loader::AnswerTensors;
    use mplug::train::tasks::vqa::vqa_loss;
    let (mut cfg, _) = MplugConfig::from_yaml(&repo().join("configs/vqa_tiny.yaml")).unwrap();
    assert_eq!(cfg.bert.hidden_dropout_prob, 0.0);
    cfg.vision.dropout = 0.0;
    tch::manual_seed(12);
    let vs = VarStore::new(Device::Cpu);
    let model = MplugModel::new(&vs.root(), &cfg);
    let images = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
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
    before.extend(hyper(&cfg, CLIP, &[]));
    let want = reference("vqa_step_reference.py", before);

    let mut opt = optimizer(&model, &vs);
    let (mut losses, mut norms, mut grads) = (Vec::new(), Vec::new(), HashMap::new());
    for _ in 0..STEPS {
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
        grads = gradients(&vs);
        opt.step(LR1, LR2);
    }
    let want_loss = Vec::<f64>::try_from(&want["loss"]).unwrap();
    assert!(want_loss[1] < want_loss[0], "the loss falls: {want_loss:?}");
    assert!(grads.keys().any(|n| n.starts_with("visual_encoder.")));
    assert!(grads.keys().any(|n| n.starts_with("text_decoder.")));
    assert_same_steps(&want, &losses, &norms, &grads, &vs, CLIP);
}

/// Two caption fine-tuning steps of two accumulated micro-batches each
/// (`train::tasks::caption::caption_loss`, each divided by the accumulation before backward, then
/// clipping and AdamW, as the trainer runs them) equal tests/py/caption_step_reference.py, the
/// reference's `caption_mplug.py` step written from the reference doc: the decoder over the visual
/// tokens only, BertPrefixModel's mean token CE with PAD → −100.
#[test]
fn two_caption_steps_equal_the_pytorch_reference_steps() {
    use finetune_steps::*;
    use mplug::train::tasks::caption::caption_loss;
    const ACCUM: usize = 2;
    let (mut cfg, _) = MplugConfig::from_yaml(&repo().join("configs/caption_tiny.yaml")).unwrap();
    cfg.vision.dropout = 0.0;
    tch::manual_seed(13);
    let vs = VarStore::new(Device::Cpu);
    let model = MplugModel::new(&vs.root(), &cfg);
    let images = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
    let caption_ids = ids(
        &[
            &[101, 1037, 2417, 4418, 2006, 1037, 2317, 4281, 1012, 102],
            &[101, 1037, 2665, 2675, 102],
        ],
        10,
    );
    let mask = caption_ids.ne(0).to_kind(Kind::Int64);
    let mut before = named_variables(&vs);
    for (n, t) in [("images", &images), ("ids", &caption_ids), ("mask", &mask)] {
        before.push((n.to_string(), t.shallow_clone()));
    }
    before.extend(hyper(&cfg, CLIP, &[("accum", ACCUM as f64)]));
    let want = reference("caption_step_reference.py", before);

    let mut opt = optimizer(&model, &vs);
    let (mut losses, mut norms, mut grads) = (Vec::new(), Vec::new(), HashMap::new());
    for _ in 0..STEPS {
        opt.zero_grad();
        for _ in 0..ACCUM {
            let loss = caption_loss(&model, &images, &caption_ids, &mask, true);
            (&loss / ACCUM as f64).backward();
            losses.push(loss.double_value(&[]));
        }
        norms.push(opt.clip_grad_norm(CLIP));
        grads = gradients(&vs);
        opt.step(LR1, LR2);
    }
    assert!(
        !grads.keys().any(|n| n.starts_with("text_encoder.")),
        "captioning runs no text encoder"
    );
    assert_same_steps(&want, &losses, &norms, &grads, &vs, CLIP);
}

/// Two SNLI-VE and two NLVR2 steps of the designed heads (`eval::statement_task::statement_logits`
/// and `train::tasks::statement::statement_loss`, clipping, AdamW) equal
/// tests/py/statement_step_reference.py, the same design in PyTorch: for NLVR2 both images of each
/// pair are fused with the statement and the two CLS concatenated in image order.
#[test]
fn two_statement_steps_equal_the_pytorch_reference_steps() {
    use finetune_steps::*;
    use mplug::eval::statement_task::{StatementTask, statement_logits};
    use mplug::model::heads::ClassifierHead;
    use mplug::train::tasks::statement::statement_loss;
    for (task, seed) in [(StatementTask::SnliVe, 14), (StatementTask::Nlvr2, 15)] {
        let (mut cfg, _) = MplugConfig::from_yaml(&repo().join("configs/nlvr2_tiny.yaml")).unwrap();
        cfg.vision.dropout = 0.0;
        tch::manual_seed(seed);
        let vs = VarStore::new(Device::Cpu);
        let model = MplugModel::new(&vs.root(), &cfg);
        let frames = task.images() as i64;
        let head = ClassifierHead::new(
            vs.root() / "cls_head",
            task.head_inputs(),
            cfg.bert.hidden_size,
            task.classes(),
        );
        let images = Tensor::randn([3 * frames, 3, 32, 32], (Kind::Float, Device::Cpu));
        let text = ids(
            &[
                &[101, 2045, 2024, 2048, 7925],
                &[101, 1996, 2187, 3746, 2038, 1037, 2417, 4418],
                &[101, 2053, 11122],
            ],
            8,
        );
        let mask = text.ne(0).to_kind(Kind::Int64);
        let labels = Tensor::from_slice(&[1i64, 0, task.classes() - 1]);
        let mut before = named_variables(&vs);
        for (n, t) in [
            ("images", &images),
            ("ids", &text),
            ("mask", &mask),
            ("labels", &labels),
        ] {
            before.push((n.to_string(), t.shallow_clone()));
        }
        // classification gradients are small: clip lower, so clipping is active here too
        const STATEMENT_CLIP: f64 = 0.1;
        before.extend(hyper(&cfg, STATEMENT_CLIP, &[]));
        let want = reference("statement_step_reference.py", before);

        let mut opt = optimizer(&model, &vs);
        let (mut losses, mut norms, mut grads) = (Vec::new(), Vec::new(), HashMap::new());
        for _ in 0..STEPS {
            opt.zero_grad();
            let logits = statement_logits(&model, &head, &images, &text, &mask, frames, true);
            let (loss, _) = statement_loss(&logits, &labels);
            loss.backward();
            norms.push(opt.clip_grad_norm(STATEMENT_CLIP));
            losses.push(loss.double_value(&[]));
            grads = gradients(&vs);
            opt.step(LR1, LR2);
        }
        assert!(grads.contains_key("cls_head.0.weight"), "{task:?}");
        assert_same_steps(&want, &losses, &norms, &grads, &vs, STATEMENT_CLIP);
    }
}

/// Two SCST steps (`train::tasks::caption_scst::scst_loss`: beam search with gradients, CIDEr-D
/// rewards over the batch, the beams' mean as baseline; then clipping and AdamW) equal
/// tests/py/scst_step_reference.py, the reference's `caption_mplug_scst.py` step written from the
/// reference doc with transformers' tokenizer and pycocoevalcap's PTBTokenizer and Cider: the same
/// hypotheses, rewards, losses, gradients and parameters. The decoder's output bias favours a few
/// words and `[SEP]`, so hypotheses are words that end at different steps, and the references are
/// made from the model's own first beams, so rewards differ between beams.
#[test]
fn two_scst_steps_equal_the_pytorch_reference_steps() {
    use finetune_steps::*;
    use mplug::model::generate::{GenerateConfig, beam_search};
    use mplug::text::BertTokenizer;
    use mplug::text::decode::decode_generated;
    use mplug::train::tasks::caption_scst::scst_loss;
    // alone in a process: the model is built from libtorch's global generator, which other test
    // threads draw from, and the check below that beams end at different steps needs these weights
    if !crate::common::in_own_process(
        "train_step::two_scst_steps_equal_the_pytorch_reference_steps",
    ) {
        return;
    }
    let (mut cfg, _) =
        MplugConfig::from_yaml(&repo().join("configs/caption_scst_tiny.yaml")).unwrap();
    cfg.vision.dropout = 0.0;
    assert_eq!(cfg.bert.hidden_dropout_prob, 0.0);
    tch::manual_seed(16);
    let vs = VarStore::new(Device::Cpu);
    let model = MplugModel::new(&vs.root(), &cfg);
    // a, red, blue, green, circle, square, on, the, white, background, ., two, small
    let words = [
        1037i64, 2417, 2630, 2665, 4418, 2675, 2006, 1996, 2317, 4281, 1012, 2048, 2235,
    ];
    tch::no_grad(|| {
        let bias = named_variables(&vs)
            .into_iter()
            .find(|(n, _)| n == "text_decoder.cls.predictions.bias")
            .expect("the decoder's output bias")
            .1;
        for &w in &words {
            let _ = bias.get(w).fill_(6.0);
        }
        let _ = bias.get(102).fill_(7.2);
    });
    let tokenizer = BertTokenizer::from_vocab_file(&crate::common::vocab()).unwrap();
    let images = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
    let generate = GenerateConfig {
        beam_size: 3,
        min_length: 2,
        max_length: 7,
        num_return: 3,
        kv_cache: false,
    };
    let visual = model.encode_image(&images, false);
    let first = beam_search(
        &model,
        &visual,
        &MplugModel::visual_memory_mask(&visual),
        None,
        &generate,
    );
    let texts: Vec<Vec<String>> = first
        .iter()
        .map(|hs| {
            hs.iter()
                .map(|h| decode_generated(&tokenizer, &h.tokens))
                .collect()
        })
        .collect();
    // image b: its beam b, and another beam's first words with a period (distinct lists per
    // image, or every n-gram would be in every image's references and weigh nothing)
    let references: Vec<Vec<String>> = texts
        .iter()
        .enumerate()
        .map(|(b, t)| {
            let half: Vec<&str> = t[(b + 1) % 3].split_whitespace().take(2).collect();
            vec![t[b].clone(), format!("{} .", half.join(" "))]
        })
        .collect();
    let bytes = |s: &str| Tensor::from_slice(s.as_bytes());
    let mut before = named_variables(&vs);
    before.push(("images".into(), images.shallow_clone()));
    before.push((
        "references".into(),
        bytes(&serde_json::to_string(&references).unwrap()),
    ));
    before.push((
        "vocab".into(),
        bytes(crate::common::vocab().to_str().unwrap()),
    ));
    // SCST's gradients are small: a lower clip keeps clipping active
    const SCST_CLIP: f64 = 0.1;
    before.extend(hyper(
        &cfg,
        SCST_CLIP,
        &[
            ("beam", generate.beam_size as f64),
            ("min_length", generate.min_length as f64),
            ("max_length", generate.max_length as f64),
        ],
    ));
    let want = reference("scst_step_reference.py", before);

    let mut opt = optimizer(&model, &vs);
    let (mut losses, mut norms, mut grads) = (Vec::new(), Vec::new(), HashMap::new());
    let (mut rewards, mut hypotheses) = (Vec::new(), Vec::new());
    for _ in 0..STEPS {
        opt.zero_grad();
        let out = scst_loss(&model, &images, &references, &tokenizer, &generate).unwrap();
        out.loss.backward();
        norms.push(opt.clip_grad_norm(SCST_CLIP));
        losses.push(out.loss.double_value(&[]));
        grads = gradients(&vs);
        opt.step(LR1, LR2);
        rewards.extend(out.rewards);
        hypotheses.extend(out.hypotheses);
    }
    let want_hyps = Vec::<Vec<i64>>::try_from(&want["hypotheses"]).unwrap();
    let want_hyps: Vec<Vec<i64>> = want_hyps
        .into_iter()
        .map(|r| r.into_iter().filter(|&t| t >= 0).collect())
        .collect();
    assert_eq!(hypotheses, want_hyps, "the same hypotheses");
    let lengths: BTreeSet<usize> = hypotheses.iter().map(Vec::len).collect();
    assert!(
        lengths.len() > 1,
        "hypotheses end at different steps: {hypotheses:?}"
    );
    let want_rewards = Vec::<f64>::try_from(&want["rewards"]).unwrap();
    assert_eq!(rewards.len(), want_rewards.len());
    for (k, (got, w)) in rewards.iter().zip(&want_rewards).enumerate() {
        // the reference's rewards are float32
        assert!(
            (got - w).abs() < 1e-5 * w.abs().max(1.0),
            "reward {k}: {got} vs {w}"
        );
    }
    let distinct: BTreeSet<i64> = want_rewards.iter().map(|r| (r * 1e6) as i64).collect();
    assert!(
        distinct.len() > 2,
        "rewards differ between beams: {want_rewards:?}"
    );
    assert!(
        !grads.keys().any(|n| n.starts_with("text_encoder.")),
        "captioning runs no text encoder"
    );
    assert_same_steps(&want, &losses, &norms, &grads, &vs, SCST_CLIP);
}

/// Two grounding steps (`train::tasks::grounding::grounding_loss`: the four coordinate tokens after
/// `[unused339]` from the fused memory, `bbox_prob_mask`, CE weighted by the argmax box's L1 and
/// 1 − GIoU, then clipping and AdamW) equal tests/py/grounding_step_reference.py, the reference's
/// `grounding_mplug.py` step written from the reference doc — with the reference's broadcast
/// weights (batch-averaged, the default) and with per-sample weights. Targets include a
/// coordinate past 1 (clamped to bin 336) and a tiny box.
#[test]
fn two_grounding_steps_equal_the_pytorch_reference_steps() {
    use finetune_steps::*;
    use mplug::train::tasks::grounding::grounding_loss;
    const GROUNDING_CLIP: f64 = 0.5;
    let mut losses_by_mode = Vec::new();
    for (per_sample, seed) in [(false, 17), (true, 17)] {
        let (mut cfg, _) =
            MplugConfig::from_yaml(&repo().join("configs/grounding_tiny.yaml")).unwrap();
        cfg.vision.dropout = 0.0;
        tch::manual_seed(seed);
        let vs = VarStore::new(Device::Cpu);
        let model = MplugModel::new(&vs.root(), &cfg);
        let images = Tensor::randn([3, 3, 32, 32], (Kind::Float, Device::Cpu));
        let text = ids(
            &[
                &[101, 2187, 2158, 102],
                &[101, 1996, 2417, 4418, 2006, 1996, 2157, 102],
                &[101, 2235, 102],
            ],
            8,
        );
        let mask = text.ne(0).to_kind(Kind::Int64);
        let targets = Tensor::from_slice(&[
            0.31f32, 0.52, 0.20, 0.44, //
            0.90, 0.15, 0.25, 1.02, //
            0.50, 0.50, 0.01, 0.02,
        ])
        .view([3, 4]);
        let mut before = named_variables(&vs);
        for (n, t) in [
            ("images", &images),
            ("ids", &text),
            ("mask", &mask),
            ("targets", &targets),
        ] {
            before.push((n.to_string(), t.shallow_clone()));
        }
        before.extend(hyper(
            &cfg,
            GROUNDING_CLIP,
            &[("per_sample", per_sample as i64 as f64)],
        ));
        let want = reference("grounding_step_reference.py", before);

        let mut opt = optimizer(&model, &vs);
        let (mut losses, mut norms, mut grads) = (Vec::new(), Vec::new(), HashMap::new());
        for _ in 0..STEPS {
            opt.zero_grad();
            let out = grounding_loss(&model, &images, &text, &mask, &targets, per_sample, true);
            out.loss.backward();
            norms.push(opt.clip_grad_norm(GROUNDING_CLIP));
            losses.push(out.loss.double_value(&[]));
            grads = gradients(&vs);
            opt.step(LR1, LR2);
        }
        assert!(grads.keys().any(|n| n.starts_with("text_encoder.")));
        assert!(grads.keys().any(|n| n.starts_with("text_decoder.")));
        assert_same_steps(&want, &losses, &norms, &grads, &vs, GROUNDING_CLIP);
        losses_by_mode.push(losses[0]);
    }
    assert!(
        (losses_by_mode[0] - losses_by_mode[1]).abs() > 1e-6 * losses_by_mode[0],
        "the broadcast and per-sample weights give different losses: {losses_by_mode:?}"
    );
}

/// AdamW over flat buckets (every parameter a view of its group's buffer, the gradients views of a
/// flat gradient buffer once every member has one) steps as the per-tensor AdamW. Without clipping
/// the parameters are bit-identical over four steps: the first two train captioning only — the
/// text encoder gets no gradient, its buckets stay per tensor and are skipped (torch's rule for a
/// parameter without a gradient) — then VQA trains every part. With clipping, the total norm is
/// summed in another order (1e-5, f32) and the clipped gradients agree to 1e-5 of their scale; the
/// parameters are not compared there, as Adam turns the last-bit noise of gradients that are zero
/// in exact arithmetic (attention key biases) into ±lr steps in either optimiser.
#[test]
fn flat_bucket_adamw_steps_as_the_per_tensor_adamw() {
    use mplug::loader::AnswerTensors;
    use mplug::train::tasks::caption::caption_loss;
    use mplug::train::tasks::vqa::vqa_loss;
    // alone in a process: the two models are built from libtorch's global generator, which other
    // test threads draw from (a draw between the seed and the build would make them differ)
    if !crate::common::in_own_process("train_step::flat_bucket_adamw_steps_as_the_per_tensor_adamw")
    {
        return;
    }
    let (mut cfg, _) = MplugConfig::from_yaml(&repo().join("configs/vqa_tiny.yaml")).unwrap();
    cfg.vision.dropout = 0.0;
    let build = || {
        tch::manual_seed(21);
        let vs = VarStore::new(Device::Cpu);
        let model = MplugModel::new(&vs.root(), &cfg);
        (vs, model)
    };
    let params = |vs: &VarStore, model: &MplugModel| model.trainable_variables(vs);
    let images = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
    let text = ids(&[&[101, 1037, 2417, 4418, 102], &[101, 2129, 2116, 102]], 5);
    let mask = text.ne(0).to_kind(Kind::Int64);
    let answer_ids = ids(&[&[101, 2417, 102], &[101, 2048, 102]], 3);
    let answers = AnswerTensors {
        mask: answer_ids.ne(0).to_kind(Kind::Int64),
        ids: answer_ids.shallow_clone(),
        weights: Tensor::from_slice(&[1.0f32, 1.0]),
        counts: Tensor::from_slice(&[1i64, 1]),
    };
    for clip in [f64::INFINITY, 0.05] {
        let (vs_flat, model_flat) = build();
        let (vs_per, model_per) = build();
        let mut flat = AdamW::new(params(&vs_flat, &model_flat), WEIGHT_DECAY);
        let mut per = AdamW::per_tensor(params(&vs_per, &model_per), WEIGHT_DECAY);
        let encoder_before: Vec<(String, Tensor)> = named_variables(&vs_flat)
            .into_iter()
            .filter(|(n, _)| n.starts_with("text_encoder."))
            .map(|(n, p)| (n, p.copy()))
            .collect();
        let steps = if clip.is_finite() { 1 } else { 4 };
        for step in 0..steps {
            let mut norms = Vec::new();
            let mut clipped = Vec::new();
            for (vs, model, opt) in [
                (&vs_flat, &model_flat, &mut flat),
                (&vs_per, &model_per, &mut per),
            ] {
                opt.zero_grad();
                let loss = if step < 2 {
                    caption_loss(model, &images, &text, &mask, true)
                } else {
                    vqa_loss(model, &images, &text, &mask, &answers, true)
                };
                loss.backward();
                norms.push(opt.clip_grad_norm(clip));
                clipped.push(finetune_steps::gradients(vs));
                opt.step(LR1, LR2);
            }
            assert!(
                (norms[0] - norms[1]).abs() < 1e-5 * norms[1],
                "step {step}: {norms:?}"
            );
            assert_eq!(
                clipped[0].keys().collect::<BTreeSet<_>>(),
                clipped[1].keys().collect::<BTreeSet<_>>()
            );
            if clip.is_finite() {
                assert!(norms[0] > clip, "clipping is active: {norms:?}");
                for (n, g) in &clipped[0] {
                    let d = max_abs(g, &clipped[1][n]);
                    assert!(
                        d <= 1e-5 * scale(g),
                        "clipped gradient of {n} differs by {d:e}"
                    );
                }
                continue;
            }
            let per_params: HashMap<String, Tensor> =
                named_variables(&vs_per).into_iter().collect();
            for (n, p) in named_variables(&vs_flat) {
                let d = max_abs(&p, &per_params[&n]);
                assert!(d == 0.0, "step {step}: {n} differs by {d:e}");
            }
            let (buckets, flat_now, idle) = flat.flat_buckets();
            if step == 1 {
                assert!(idle > 0, "text-encoder buckets have no gradient yet");
                for (n, before) in &encoder_before {
                    assert_eq!(max_abs(before, &per_params[n]), 0.0, "{n}: skipped");
                }
            }
            if step == 3 {
                assert_eq!(
                    flat_now + idle,
                    buckets,
                    "every bucket with gradients is flat (the others: heads VQA never trains)"
                );
                assert!(idle < buckets / 2);
                let moved = encoder_before
                    .iter()
                    .filter(|(n, b)| max_abs(b, &per_params[n]) > 0.0)
                    .count();
                assert!(moved > 0, "the text encoder trains once VQA runs");
            }
        }
    }
}

/// The optimiser's part of a step — the global norm, clipping, the AdamW update of every bucket and
/// zeroing — reads nothing from the device (issue 20): counted by a libtorch RecordFunction
/// callback on `aten::_local_scalar_dense`, alone in its own process. The counter itself is checked
/// by one deliberate read, and by the host-side `clip_grad_norm`, which reads the norm once.
#[test]
fn the_optimizer_step_reads_nothing_on_the_host() {
    use mplug::train::host_reads;
    use mplug::train::tasks::caption::caption_loss;
    if !crate::common::in_own_process("train_step::the_optimizer_step_reads_nothing_on_the_host") {
        return;
    }
    let (mut cfg, _) = MplugConfig::from_yaml(&repo().join("configs/vqa_tiny.yaml")).unwrap();
    cfg.vision.dropout = 0.0;
    tch::manual_seed(3);
    let vs = VarStore::new(Device::Cpu);
    let model = MplugModel::new(&vs.root(), &cfg);
    let params = model.trainable_variables(&vs);
    let mut opt = AdamW::new(params, WEIGHT_DECAY);
    let images = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
    let text = ids(&[&[101, 1037, 2417, 4418, 102], &[101, 2129, 2116, 102]], 5);
    let mask = text.ne(0).to_kind(Kind::Int64);
    for step in 0..3 {
        opt.zero_grad();
        caption_loss(&model, &images, &text, &mask, true).backward();
        host_reads::reset();
        // clipping active (0.05 is far below this model's norm) on every step
        let norm = opt.clip_grad_norm_on_device(0.05);
        opt.step(LR1, LR2);
        opt.zero_grad();
        assert_eq!(host_reads::count(), 0, "step {step}");
        assert!(norm.double_value(&[]) > 0.05);
        assert_eq!(host_reads::count(), 1, "the counter sees a read");
    }
    caption_loss(&model, &images, &text, &mask, true).backward();
    host_reads::reset();
    let _ = opt.clip_grad_norm(0.05);
    assert_eq!(host_reads::count(), 1);
}

/// The ITM negatives' sampler draws exactly what `torch.multinomial(w, 1)` draws from the same
/// generator state, and leaves the generator where multinomial leaves it (so the PyTorch step tests
/// still see the same negatives), without multinomial's host reads. Alone in its own process: it
/// seeds libtorch's global generator.
#[test]
fn negative_sampling_draws_as_multinomial_without_host_reads() {
    use mplug::train::host_reads;
    use mplug::train::objectives::sample_one_per_row;
    if !crate::common::in_own_process(
        "train_step::negative_sampling_draws_as_multinomial_without_host_reads",
    ) {
        return;
    }
    let w = Tensor::rand([16, 12], (Kind::Float, Device::Cpu));
    // a zero column and a one-hot row, as the excluded pairs make them
    let w = w.index_fill(1, &Tensor::from_slice(&[3i64]), 0.0);
    let w = Tensor::cat(
        &[
            w.narrow(0, 0, 15),
            Tensor::eye(12, (Kind::Float, Device::Cpu)).narrow(0, 5, 1),
        ],
        0,
    );
    for seed in 0..20 {
        tch::manual_seed(seed);
        let want = w.multinomial(1, false).view([-1]);
        let after_want = Tensor::rand([4], (Kind::Float, Device::Cpu));
        tch::manual_seed(seed);
        host_reads::reset();
        let got = sample_one_per_row(&w);
        assert_eq!(host_reads::count(), 0);
        let after_got = Tensor::rand([4], (Kind::Float, Device::Cpu));
        assert_eq!(
            Vec::<i64>::try_from(&got).unwrap(),
            Vec::<i64>::try_from(&want).unwrap()
        );
        assert!(after_got.equal(&after_want));
        assert_eq!(Vec::<i64>::try_from(&got).unwrap()[15], 5);
    }
    // the counter does see multinomial's checks
    host_reads::reset();
    let _ = w.multinomial(1, false);
    assert!(host_reads::count() >= 2);
}
