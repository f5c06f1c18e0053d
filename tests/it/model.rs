//! The model against independent oracles: a functional PyTorch implementation written from the
//! reference doc (tests/py/mplug_reference.py) on random weights saved by `torch.save` with the
//! original keys; hand-derived parameter counts; and invariants (round trips, gradients, determinism).

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use crate::common::{mplug, ok, python, repo, seeded_randn};
use mplug::model::weights::{LoadOptions, load_state_dict, named_variables, write_safetensors};
use mplug::model::{MplugConfig, MplugModel};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

const TINY_ARGS: &[&str] = &[
    "--bert",
    "configs/config_bert_tiny.json",
    "--vision-width",
    "64",
    "--vision-layers",
    "2",
    "--vision-heads",
    "2",
    "--patch",
    "8",
    "--image-res",
    "32",
    "--embed-dim",
    "16",
];

fn reference(args: &[&str]) {
    let out = Command::new(python())
        .current_dir(repo())
        .arg("tests/py/mplug_reference.py")
        .args(args)
        .output()
        .unwrap();
    ok(out);
}

fn tiny() -> MplugConfig {
    MplugConfig::from_yaml(&repo().join("configs/tiny.yaml"))
        .unwrap()
        .0
}

fn read(path: &Path) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(path)
        .unwrap()
        .into_iter()
        .collect()
}

/// Tiny inputs: 2 images, questions of length 5 (the second padded after 3 tokens), decoder inputs of
/// length 4 (the first padded after 3).
fn write_inputs(path: &Path, with_prompt: bool) {
    let image = seeded_randn(&[2, 3, 32, 32], 7);
    let ids = Tensor::from_slice(&[101i64, 2023, 2003, 1037, 4937, 101, 2054, 3609, 0, 0])
        .reshape([2, 5]);
    let mask = Tensor::from_slice(&[1i64, 1, 1, 1, 1, 1, 1, 1, 0, 0]).reshape([2, 5]);
    let dec = Tensor::from_slice(&[101i64, 4937, 102, 0, 101, 3899, 2006, 102]).reshape([2, 4]);
    let dec_mask = Tensor::from_slice(&[1i64, 1, 1, 0, 1, 1, 1, 1]).reshape([2, 4]);
    // "[CLS] a picture": the VATEX prompt after the reference's [:-1] (reference §3.8)
    let prompt = Tensor::from_slice(&[101i64, 1037, 3861, 101, 1037, 3861]).reshape([2, 3]);
    let mut named = vec![
        ("image", image),
        ("input_ids", ids),
        ("attention_mask", mask),
        ("decoder_input_ids", dec),
        ("decoder_attention_mask", dec_mask),
    ];
    if with_prompt {
        named.push(("prompt_ids", prompt));
    }
    Tensor::write_safetensors(&named, path).unwrap();
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a.to_kind(Kind::Double) - b.to_kind(Kind::Double))
        .abs()
        .max()
        .double_value(&[])
}

/// `mplug forward --module generate` (min length 2, max 6) on the tiny config, with the key/value
/// cache or (`no_cache`) re-running the prefix as the reference; the outputs read back.
fn generate(
    weights: &str,
    inputs: &str,
    out: &Path,
    beams: &str,
    num_return: &str,
    no_cache: bool,
) -> HashMap<String, Tensor> {
    ok(mplug()
        .current_dir(repo())
        .args([
            "forward",
            "--config",
            "configs/tiny.yaml",
            "--module",
            "generate",
        ])
        .args([
            "--beam-size",
            beams,
            "--min-length",
            "2",
            "--max-length",
            "6",
            "--num-return",
            num_return,
        ])
        .args([
            "--allow-unexpected",
            "--weights",
            weights,
            "--inputs",
            inputs,
            "--out",
        ])
        .arg(out)
        .args(no_cache.then_some("--no-kv-cache"))
        .output()
        .unwrap());
    read(out)
}

/// The released checkpoint formats (task keys and the pretrained `bert.`/`fusion.` layout, with a
/// positional table at another resolution) convert with the right key report, and every output of
/// the whole model equals the PyTorch reference within 1e-4 (fp32); beam search returns the same
/// hypotheses.
#[test]
fn parity_with_pytorch_reference_on_released_layouts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let inputs = d.join("inputs.safetensors");
    write_inputs(&inputs, false);
    let prompt_inputs = d.join("inputs_prompt.safetensors");
    write_inputs(&prompt_inputs, true);
    for layout in ["task", "pretrained"] {
        let ck = d.join(format!("{layout}.pth"));
        let ck_s = ck.to_str().unwrap();
        let mut args = vec!["make-checkpoint"];
        args.extend_from_slice(TINY_ARGS);
        args.extend([
            "--out",
            ck_s,
            "--pos-rows",
            "10",
            "--layout",
            layout,
            "--seed",
            "3",
        ]);
        reference(&args);

        let w = d.join(format!("{layout}.safetensors"));
        let out = mplug()
            .current_dir(repo())
            .args([
                "convert",
                ck_s,
                w.to_str().unwrap(),
                "--config",
                "configs/tiny.yaml",
            ])
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&out.stderr).into_owned();
        ok(out);
        assert!(
            report.contains("resized visual_encoder.visual.positional_embedding: 10 → 17"),
            "{report}"
        );
        for reason in [
            "CLIP text tower",
            "CLIP projection",
            "fusion layer before start_layer",
            "fusion embeddings",
            "momentum copy",
            "ITC queue",
            "tied alias",
        ] {
            assert!(report.contains(reason), "{reason} missing from:\n{report}");
        }
        assert!(
            !report.contains("missing keys") && !report.contains("unexpected keys"),
            "{report}"
        );
        assert_eq!(
            report.contains("renamed"),
            layout == "pretrained",
            "{report}"
        );

        let got = d.join(format!("{layout}.out.safetensors"));
        ok(mplug()
            .current_dir(repo())
            .args(["forward", "--config", "configs/tiny.yaml", "--weights"])
            .arg(&w)
            .arg("--inputs")
            .arg(&inputs)
            .arg("--out")
            .arg(&got)
            .output()
            .unwrap());
        let want = d.join(format!("{layout}.ref.safetensors"));
        let mut args = vec!["forward"];
        args.extend_from_slice(TINY_ARGS);
        let (inp, wnt) = (inputs.to_str().unwrap(), want.to_str().unwrap());
        let pinp = prompt_inputs.to_str().unwrap();
        args.extend(["--ckpt", ck_s, "--inputs", pinp, "--out", wnt]);
        args.extend([
            "--beam-size",
            "3",
            "--min-length",
            "2",
            "--max-length",
            "6",
            "--num-return",
            "2",
        ]);
        reference(&args);
        let (got, want_t) = (read(&got), read(&want));
        for key in [
            "visual_encoder",
            "image_embeds",
            "text_embeds",
            "fusion_visual",
            "fusion_text",
            "memory",
            "image_feat",
            "text_feat",
            "itm_logits",
            "mlm_logits",
            "decoder_logits",
        ] {
            let (g, w) = (&got[key], &want_t[key]);
            let scale = w.abs().max().double_value(&[]).max(1.0);
            let diff = max_abs_diff(g, w);
            assert!(
                diff <= 1e-4 * scale,
                "{layout} {key}: max |diff| {diff:.3e} (scale {scale:.2})"
            );
        }

        // the .pth itself also works as --weights (pickle path), and beam search matches, with the
        // key/value cache and re-running the prefix alike
        let w_s = w.to_str().unwrap();
        for no_cache in [false, true] {
            let generated = generate(
                ck_s,
                inp,
                &d.join(format!("{layout}.{no_cache}.gen.safetensors")),
                "3",
                "2",
                no_cache,
            );
            let (seq, ref_seq) = (&generated["sequences"], &want_t["beam_sequences"]);
            assert_eq!(
                Vec::<Vec<i64>>::try_from(seq).unwrap(),
                Vec::<Vec<i64>>::try_from(ref_seq).unwrap(),
                "{layout}"
            );
            let diff = max_abs_diff(&generated["scores"], &want_t["beam_scores"]);
            assert!(diff < 1e-4, "{layout} beam scores differ by {diff}");
            // beam search seeded by a prompt (only `generate` reads prompt_ids)
            let prompted = generate(
                w_s,
                pinp,
                &d.join(format!("{layout}.{no_cache}.prompt.safetensors")),
                "3",
                "1",
                no_cache,
            );
            let got_p = Vec::<Vec<i64>>::try_from(&prompted["sequences"]).unwrap();
            let want_p = Vec::<Vec<i64>>::try_from(&want_t["prompt_beam_sequences"]).unwrap();
            assert_eq!(got_p, want_p, "{layout} prompted beam search");
            assert!(
                got_p.iter().all(|s| s[..3] == [101, 1037, 3861]),
                "{got_p:?}"
            );
            let greedy = generate(
                w_s,
                inp,
                &d.join(format!("{layout}.{no_cache}.greedy.safetensors")),
                "1",
                "1",
                no_cache,
            );
            let want_greedy = Vec::<Vec<i64>>::try_from(&want_t["greedy_sequences"]).unwrap();
            let got_greedy = Vec::<Vec<i64>>::try_from(&greedy["sequences"]).unwrap();
            // ours stops each row at its EOS; the reference pads finished rows with [PAD] = 0
            for (g, w) in got_greedy.iter().zip(&want_greedy) {
                let w: Vec<i64> = w.iter().copied().take_while(|&t| t != 0).collect();
                let g: Vec<i64> = g.iter().copied().take_while(|&t| t != 0).collect();
                assert_eq!(g, w, "{layout} greedy");
            }
        }
    }
}

/// Parameter counts against the reference's arithmetic (shared/docs/mplug-reference.md §1.10):
/// BERT text encoder 66,364,416; executed fusion 56,710,656; decoder 137,881,146; effective base
/// @384 347,440,698 and large @336 566,038,842 — both of which include CLIP's unused `proj`
/// (768×512 = 393,216; 1024×768 = 786,432), which we do not build.
#[test]
fn parameter_counts_match_the_reference() {
    for (yaml, res, reference_total, proj) in [
        ("configs/mplug_base.yaml", 384, 347_440_698i64, 393_216i64),
        ("configs/mplug_large.yaml", 336, 566_038_842, 786_432),
    ] {
        let (mut cfg, _) = MplugConfig::from_yaml(&repo().join(yaml)).unwrap();
        cfg.vision.image_res = res;
        let vs = VarStore::new(Device::Cpu);
        let model = MplugModel::new(&vs.root(), &cfg);
        let sum = mplug::model::summary::summarize(&vs, &model);
        let group = |g: &str| sum.groups.iter().find(|(n, _)| *n == g).unwrap().1;
        assert_eq!(group("text_encoder"), 66_364_416, "{yaml}");
        assert_eq!(group("fusion_encoder"), 56_710_656, "{yaml}");
        assert_eq!(group("text_decoder"), 137_881_146, "{yaml}");
        assert_eq!(sum.reference_total, reference_total - proj, "{yaml}");
    }
}

fn tiny_model(seed: i64) -> (VarStore, MplugModel) {
    tch::manual_seed(seed);
    let vs = VarStore::new(Device::Cpu);
    let model = MplugModel::new(&vs.root(), &tiny());
    (vs, model)
}

fn copy(t: &[(String, Tensor)]) -> Vec<(String, Tensor)> {
    t.iter().map(|(k, v)| (k.clone(), v.copy())).collect()
}

fn tiny_batch() -> (Tensor, Tensor, Tensor) {
    let image = seeded_randn(&[2, 3, 32, 32], 11);
    let ids = Tensor::from_slice(&[101i64, 2023, 2003, 1037, 101, 2054, 0, 0]).reshape([2, 4]);
    let mask = ids.ne(0).to_kind(Kind::Int64);
    (image, ids, mask)
}

fn all_outputs(model: &MplugModel, train: bool) -> Vec<Tensor> {
    let (image, ids, mask) = tiny_batch();
    let v = model.encode_image(&image, train);
    let t = model.encode_text(&ids, &mask, train);
    let (fv, ft) = model.fuse(&v, &t, &mask, train);
    let (i_feat, t_feat) = model.itc_features(&v, &t);
    let (mem, mem_mask) = MplugModel::decoder_memory(&fv, &ft, &mask);
    let logits = model.decode(&ids, &mask, &mem, &mem_mask, train);
    let sim = i_feat.matmul(&t_feat.tr()) / model.temp();
    let (itm, mlm) = (model.itm_logits(&ft), model.mlm_logits(&ft));
    vec![fv, ft, itm, mlm, logits, sim]
}

#[test]
fn safetensors_round_trip_is_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    let (vs, model) = tiny_model(1);
    write_safetensors(&path, &named_variables(&vs)).unwrap();
    let (vs2, model2) = tiny_model(2);
    let tensors = Tensor::read_safetensors(&path).unwrap();
    let report = load_state_dict(&vs2, tensors, &tiny(), LoadOptions::default()).unwrap();
    assert_eq!(report.loaded, vs.variables().len());
    let other = vs2.variables();
    for (name, t) in vs.variables() {
        assert!(t.equal(&other[&name]), "{name}");
    }
    for (a, b) in all_outputs(&model, false)
        .iter()
        .zip(all_outputs(&model2, false))
    {
        assert!(a.equal(&b));
    }
}

#[test]
fn cpu_forward_is_deterministic() {
    let (_vs, model) = tiny_model(5);
    let a = tch::no_grad(|| all_outputs(&model, false));
    let b = tch::no_grad(|| all_outputs(&model, false));
    for (x, y) in a.iter().zip(&b) {
        assert!(x.equal(y));
    }
}

/// Every parameter gets a non-zero gradient from a loss over all heads, except the dormant
/// cross-attention of connected fusion layers, which gets none (as in PyTorch: `grad is None`).
#[test]
fn gradients_reach_every_trainable_parameter() {
    let (vs, model) = tiny_model(3);
    let loss = all_outputs(&model, true)
        .iter()
        .map(|t| (t * t).mean(Kind::Float))
        .fold(Tensor::from(0f32), |acc, x| acc + x);
    loss.backward();
    let dormant = model.dormant_parameter_prefixes();
    assert_eq!(
        dormant,
        vec!["fusion_encoder.encoder.layer.3.crossattention.".to_string()]
    );
    let mut checked = 0;
    for (name, t) in vs.variables() {
        let grad = t.grad();
        if dormant.iter().any(|p| name.starts_with(p)) {
            assert!(
                !grad.defined() || grad.abs().sum(Kind::Float).double_value(&[]) == 0.0,
                "{name}"
            );
            continue;
        }
        assert!(grad.defined(), "{name} has no gradient");
        assert!(
            grad.abs().sum(Kind::Float).double_value(&[]) > 0.0,
            "{name} has a zero gradient"
        );
        checked += 1;
    }
    assert!(checked > 100, "{checked}");
}

#[test]
fn loading_reports_missing_and_unexpected_keys() {
    let (vs, _) = tiny_model(1);
    let mut tensors = named_variables(&vs);
    tensors.retain(|(k, _)| k != "itm_head.weight");
    tensors.push((
        "text_encoder.cls.predictions.bias".into(),
        Tensor::zeros([3], (Kind::Float, Device::Cpu)),
    ));
    let (vs2, _) = tiny_model(2);
    let err = load_state_dict(&vs2, copy(&tensors), &tiny(), LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("itm_head.weight"), "{err}");
    let opts = LoadOptions {
        allow_missing: true,
        allow_unexpected: false,
    };
    let err = load_state_dict(&vs2, copy(&tensors), &tiny(), opts)
        .unwrap_err()
        .to_string();
    assert!(err.contains("text_encoder.cls.predictions.bias"), "{err}");
    let opts = LoadOptions {
        allow_missing: true,
        allow_unexpected: true,
    };
    let report = load_state_dict(&vs2, copy(&tensors), &tiny(), opts).unwrap();
    assert_eq!(report.missing, vec!["itm_head.weight".to_string()]);
    assert_eq!(
        report.unexpected,
        vec!["text_encoder.cls.predictions.bias".to_string()]
    );
    // a wrong shape names the key and both shapes
    let mut bad = named_variables(&vs);
    for (k, t) in bad.iter_mut() {
        if k == "temp" {
            *t = Tensor::zeros([2], (Kind::Float, Device::Cpu));
        }
    }
    let err = load_state_dict(&vs2, bad, &tiny(), LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("temp: checkpoint [2], model []"), "{err}");
}

#[test]
fn cli_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pth");
    std::fs::write(&junk, b"not a zip at all").unwrap();
    let out = mplug()
        .current_dir(repo())
        .args(["convert", junk.to_str().unwrap(), "x.safetensors"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not a PyTorch zip checkpoint") && err.contains("hint:"),
        "{err}"
    );

    let w = dir.path().join("w.safetensors");
    ok(mplug()
        .current_dir(repo())
        .args([
            "model",
            "init",
            "--config",
            "configs/tiny.yaml",
            "--out",
            w.to_str().unwrap(),
        ])
        .output()
        .unwrap());
    let inputs = dir.path().join("in.safetensors");
    Tensor::write_safetensors(
        &[(
            "image",
            Tensor::zeros([1, 3, 32, 32], (Kind::Float, Device::Cpu)),
        )],
        &inputs,
    )
    .unwrap();
    let out = mplug()
        .current_dir(repo())
        .args([
            "forward",
            "--config",
            "configs/tiny.yaml",
            "--module",
            "text_encoder",
        ])
        .args([
            "--weights",
            w.to_str().unwrap(),
            "--inputs",
            inputs.to_str().unwrap(),
        ])
        .args(["--out", dir.path().join("o.safetensors").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs input tensor `input_ids`"), "{err}");
    // visual_encoder runs on the same file
    ok(mplug()
        .current_dir(repo())
        .args([
            "forward",
            "--config",
            "configs/tiny.yaml",
            "--module",
            "visual_encoder",
        ])
        .args([
            "--weights",
            w.to_str().unwrap(),
            "--inputs",
            inputs.to_str().unwrap(),
        ])
        .args(["--out", dir.path().join("o.safetensors").to_str().unwrap()])
        .output()
        .unwrap());
}
