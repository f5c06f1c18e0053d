//! `mplug eval TASK`: a model evaluated on an ingested split, writing the official results format,
//! the official metrics and a one-screen summary.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::model::DeviceArg;
use crate::eval::answer_ranking::AnswerList;
use crate::eval::batches::ItemSelection;
use crate::eval::result_files::{self, GeneratedTokens};
use crate::eval::retrieval_task::RetrievalKind;
use crate::eval::settings::{
    CAPTION_DEFAULTS, EvalSettings, NO_GENERATION, TaskDefaults, VQA_DEFAULTS,
};
use crate::eval::split::EvalSplit;
use crate::eval::statement_task::StatementTask;
use crate::eval::task_model::{TaskModel, TaskParts, load_task_model};
use crate::eval::vqa_accuracy::VqaEvalMode;
use crate::eval::{
    caption, caption_task, grounding_task, retrieval_task, statement_task, video_caption_task,
    video_qa_task, vqa, vqa_task,
};
use crate::model::MplugConfig;
use crate::shards::commit::write_atomic;
use crate::text::BertTokenizer;
use crate::text::tokenizer::default_vocab_path;

/// Evaluate a model on an ingested split.
#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// VQA: generate an answer per question of an `image_qa.v1` split (beam 5, min 1, max 10).
    ///
    /// Writes `results.json` in the EvalAI format `[{question_id, answer}]` and, when the split has
    /// answers, `metrics.json` with the official VQA accuracy (overall, per answer and question
    /// type).
    Vqa(VqaEvalArgs),
    /// Captioning: generate a caption per image of an `image_text.v1` split (beam 5, min 8, max 25).
    ///
    /// Writes `results.json` in the COCO results format `[{image_id, caption}]` and `metrics.json`
    /// with BLEU-1..4, ROUGE-L, CIDEr-D (and METEOR with --meteor-jar) against the stored captions.
    Caption(CaptionEvalArgs),
    /// Image–text retrieval over an `image_text.v1` split: ITC over all pairs, the top k_test
    /// re-ranked by the ITM positive logit, both ways.
    ///
    /// Writes `results.json` (the reference's itm_eval dict: txt_r1/5/10, img_r1/5/10, means,
    /// r_mean) and `metrics.json`; --save-scores also writes the ITC and ITM score matrices
    /// (`scores.safetensors`) with `index.json` (image ids, texts, img2txt, txt2img).
    Retrieval(RetrievalEvalArgs),
    /// Zero-shot text–video retrieval (MSRVTT) over a `video_text.v1` split: a clip's ITC feature
    /// is the mean of its frames' projections; the top k_test re-ranked by ITM over all frames'
    /// tokens, scored ITM + ITC; R@1/5/10 both ways and the median rank (MdR).
    #[command(alias = "msrvtt-retrieval")]
    VideoRetrieval(RetrievalEvalArgs),
    /// Visual grounding: a box per referring expression of an `image_grounding.v1` split (4 greedy
    /// coordinate tokens), accuracy at IoU ≥ 0.5 in the reference's normalised padded frame.
    ///
    /// Writes `results.json` (every expression's predicted and ground-truth box, in source pixels
    /// and normalised, with its IoU) and `metrics.json`.
    Grounding(GroundingEvalArgs),
    /// Zero-shot video QA (MSRVTT-QA, MSVD-QA) over a `video_text.v1` split: the clip's frames
    /// concatenated, `rank_answer` over the answer list (k_test), exact-match accuracy.
    ///
    /// The answer list is the dataset's train-split answers (the reference's `train_ans2label.json`)
    /// unless --answer-list is given. Writes `results.json` `[{question_id, answer}]` and
    /// `metrics.json`.
    VideoQa(VideoQaEvalArgs),
    /// Zero-shot video captioning (VATEX) over a `video_text.v1` split: frames concatenated, beam
    /// search from the prompt `[CLS] a picture` (the reference's quirk), the reference's
    /// post-processing.
    ///
    /// Writes `results.json` in the submission format `{videoID: caption}`, `references.json` and
    /// `metrics.json` (BLEU, ROUGE-L, CIDEr-D against the stored captions, when the split has them).
    #[command(alias = "vatex-caption")]
    VideoCaption(VideoCaptionEvalArgs),
    /// Visual entailment (SNLI-VE) over an `image_statement.v1` split: fused text CLS → `cls_head`
    /// (ALBEF's design: mPLUG released none), 3 classes, accuracy.
    ///
    /// The weights must hold `cls_head.0.*` and `cls_head.2.*`. Writes `results.json`
    /// `[{pair_id, image, predicted, label}]` (labels: entailment 2, neutral 1, contradiction 0) and
    /// `metrics.json`.
    SnliVe(CommonEvalArgs),
    /// NLVR2 over an `image_statement.v1` split of image pairs: the statement fused with each image,
    /// the two fused CLS vectors concatenated → `cls_head` (a pair design: mPLUG released none; see
    /// docs/ARCHITECTURE.md), 2 classes, accuracy.
    ///
    /// The weights must hold `cls_head.0.*` (`[H, 2H]`) and `cls_head.2.*`. Writes `results.json`
    /// `[{identifier, pair, predicted, label}]` (True 1, False 0) and `metrics.json`.
    Nlvr2(CommonEvalArgs),
}

/// Options of `mplug eval video-caption`.
#[derive(Debug, Args)]
pub struct VideoCaptionEvalArgs {
    #[command(flatten)]
    common: CommonEvalArgs,
    /// The prompt (its last word piece is dropped, as the reference's `[:, :-1]` does)
    /// [default: the config's `prompt`, else "a picture of"].
    #[arg(long)]
    prompt: Option<String>,
    /// METEOR 1.5's jar (run with Java); also $MPLUG_METEOR_JAR.
    #[arg(long, value_name = "JAR", env = "MPLUG_METEOR_JAR")]
    meteor_jar: Option<PathBuf>,
}

/// Options of `mplug eval video-qa`.
#[derive(Debug, Args)]
pub struct VideoQaEvalArgs {
    #[command(flatten)]
    common: CommonEvalArgs,
    /// Candidate answers (JSON list of strings) [default: the train split's answers].
    #[arg(long, value_name = "FILE")]
    answer_list: Option<PathBuf>,
    /// Split whose answers form the list when --answer-list is not given.
    #[arg(long, default_value = "train")]
    answers_from: String,
}

/// Options of `mplug eval grounding`.
#[derive(Debug, Args)]
pub struct GroundingEvalArgs {
    #[command(flatten)]
    common: CommonEvalArgs,
    /// Also write the model inputs (images after the test transform, text ids) to
    /// inputs.safetensors, to compare with another implementation.
    #[arg(long)]
    save_inputs: bool,
}

/// Options of `mplug eval retrieval`.
#[derive(Debug, Args)]
pub struct RetrievalEvalArgs {
    #[command(flatten)]
    common: CommonEvalArgs,
    /// Candidates re-ranked by ITM per query [default: the config's k_test, else 128].
    #[arg(long)]
    k_test: Option<usize>,
    /// Also write the similarity and score matrices (scores.safetensors) and index.json.
    #[arg(long)]
    save_scores: bool,
}

/// Options every `mplug eval` task takes.
#[derive(Debug, Args)]
pub struct CommonEvalArgs {
    /// Task config (YAML with the original keys: `bert_config`, `image_res`, …,
    /// `batch_size_test`, `beam_size`, `min_length`, `max_length`).
    #[arg(long, value_name = "YAML")]
    config: PathBuf,
    /// Weights: a released `.pth` checkpoint or `.safetensors` (ours or converted).
    #[arg(long, value_name = "FILE")]
    weights: PathBuf,
    /// The dataset directory `mplug ingest` wrote (or a folder holding exactly one dataset of the
    /// task's schema).
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// The split to evaluate (as stored in the dataset's `split` column).
    #[arg(long)]
    split: String,
    /// Where results.json and metrics.json go (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Where to run.
    #[arg(long, value_enum, default_value_t = DeviceArg::Auto)]
    device: DeviceArg,
    /// Items per forward [default: the config's batch_size_test, else 16].
    #[arg(long)]
    batch_size: Option<usize>,
    /// Only the first N items of the split (in stored order).
    #[arg(long, value_name = "N")]
    limit: Option<u64>,
    /// BERT uncased vocab.txt [default: $MPLUG_VOCAB, else ~/.cache/mplug/bert-base-uncased/vocab.txt]
    #[arg(long, value_name = "FILE")]
    vocab: Option<PathBuf>,
    /// Re-run the decoder over the whole prefix every step (the reference's way; slower) instead
    /// of the key/value cache.
    #[arg(long)]
    no_kv_cache: bool,
    /// Also write tokens.json: each item's generated token ids (start token and EOS included).
    #[arg(long)]
    save_tokens: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// Options of `mplug eval vqa`.
#[derive(Debug, Args)]
pub struct VqaEvalArgs {
    #[command(flatten)]
    common: CommonEvalArgs,
    /// Which vqaEval.py scores the answers (`official`, or `legacy` as mPLUG's copy).
    #[arg(long = "vqa-eval", value_enum, default_value_t = VqaEvalMode::Official)]
    mode: VqaEvalMode,
    /// Rank the answers of this list (a JSON list of strings, the reference's answer_list.json)
    /// with `rank_answer` (top k_test by first token, re-scored by the whole answer) instead of
    /// generating.
    #[arg(long, value_name = "FILE")]
    rank_answers: Option<PathBuf>,
}

/// Options of `mplug eval caption`.
#[derive(Debug, Args)]
pub struct CaptionEvalArgs {
    #[command(flatten)]
    common: CommonEvalArgs,
    /// METEOR 1.5's jar (run with Java); also $MPLUG_METEOR_JAR. Without it METEOR is skipped.
    #[arg(long, value_name = "JAR", env = "MPLUG_METEOR_JAR")]
    meteor_jar: Option<PathBuf>,
}

/// What every task needs before it runs.
struct Prepared {
    split: EvalSplit,
    settings: EvalSettings,
    task: TaskModel,
    tokenizer: BertTokenizer,
    device: tch::Device,
    selection: ItemSelection,
    /// The process group (`mplug launch`, torchrun, Slurm): items are dealt to ranks, rank 0
    /// gathers the results and writes every file.
    group: std::sync::Arc<dyn crate::train::dist::Collective>,
}

fn prepare(
    a: &CommonEvalArgs,
    schema: &str,
    defaults: TaskDefaults,
    parts: TaskParts,
) -> anyhow::Result<Prepared> {
    // cheap checks first: a wrong split or config fails before the weights are read
    let (config, warnings) = MplugConfig::from_yaml(&a.config)?;
    for w in warnings {
        eprintln!("warning: {w}");
    }
    let mut settings = EvalSettings::from_yaml(&a.config, defaults)?;
    if let Some(b) = a.batch_size {
        anyhow::ensure!(b > 0, "--batch-size must be at least 1");
        settings.batch_size = b;
    }
    settings.generate.kv_cache = !a.no_kv_cache;
    let split = EvalSplit::open(&a.data, schema, &a.split)?;
    let vocab = a
        .vocab
        .clone()
        .or_else(default_vocab_path)
        .context("no --vocab given and no HOME to look in")?;
    let tokenizer = BertTokenizer::from_vocab_file(&vocab)?;
    let device = super::train::local_cuda(a.device.device()?)?;
    let group = crate::train::dist::join_from_env(device, &Default::default())?;
    let task = load_task_model(&config, &a.weights, device, parts)?;
    Ok(Prepared {
        split,
        settings,
        task,
        tokenizer,
        device,
        selection: ItemSelection {
            rank: group.rank() as u64,
            world_size: group.world() as u64,
            limit: a.limit,
        },
        group,
    })
}

fn write_json(path: &Path, value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value)?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)?;
    Ok(())
}

fn provenance(a: &CommonEvalArgs, p: &Prepared, items: usize, seconds: f64) -> Value {
    let g = &p.settings.generate;
    json!({
        "dataset": p.split.dataset,
        "dataset_dir": p.split.dir,
        "split": p.split.split,
        "items": items,
        "limit": a.limit,
        "config": a.config,
        "weights": a.weights,
        "device": format!("{:?}", p.device),
        "batch_size": p.settings.batch_size,
        "beam_size": g.beam_size,
        "min_length": g.min_length,
        "max_length": g.max_length,
        "kv_cache": g.kv_cache,
        "seconds": seconds,
        "items_per_second": items as f64 / seconds.max(1e-9),
        "mplug_version": env!("CARGO_PKG_VERSION"),
    })
}

/// Removes the decoding settings from the provenance of a task that generates nothing.
fn drop_generation_keys(m: &mut serde_json::Map<String, Value>) {
    for k in ["beam_size", "min_length", "max_length", "kv_cache"] {
        m.remove(k);
    }
}

fn create_out(out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create --out `{}`", out.display()))
}

/// `tokens.json` (`--save-tokens`): each item's id and generated ids.
fn write_tokens<'a>(
    out: &Path,
    items: impl Iterator<Item = (&'a String, &'a Vec<i64>)>,
) -> anyhow::Result<()> {
    let tokens: Vec<GeneratedTokens> = items
        .map(|(id, t)| GeneratedTokens {
            id: id.clone(),
            tokens: t.clone(),
        })
        .collect();
    write_json(&out.join("tokens.json"), &tokens)
}

fn bar(total: u64, quiet: bool) -> indicatif::ProgressBar {
    crate::engine::progress::items_bar(total, "eval", quiet)
}

/// Runs `mplug eval …`.
pub fn run(cmd: EvalCommand) -> anyhow::Result<()> {
    match cmd {
        EvalCommand::Vqa(a) => run_vqa(a),
        EvalCommand::Caption(a) => run_caption(a),
        EvalCommand::Retrieval(a) => run_retrieval(a, RetrievalKind::Image),
        EvalCommand::VideoRetrieval(a) => run_retrieval(a, RetrievalKind::Video),
        EvalCommand::Grounding(a) => run_grounding(a),
        EvalCommand::VideoQa(a) => run_video_qa(a),
        EvalCommand::VideoCaption(a) => run_video_caption(a),
        EvalCommand::SnliVe(a) => run_statements(a, StatementTask::SnliVe),
        EvalCommand::Nlvr2(a) => run_statements(a, StatementTask::Nlvr2),
    }
}

fn run_vqa(a: VqaEvalArgs) -> anyhow::Result<()> {
    let c = &a.common;
    let p = prepare(c, "image_qa.v1", VQA_DEFAULTS, TaskParts::FusedDecoder)?;
    let list = a
        .rank_answers
        .as_deref()
        .map(|path| AnswerList::from_file(path, &p.tokenizer))
        .transpose()?;
    let answering = match &list {
        Some(l) => vqa_task::Answering::Rank(l),
        None => vqa_task::Answering::Generate(&p.tokenizer),
    };
    let total = p.selection.count(p.split.count_list_items("question_ids")?);
    let progress = bar(total, c.quiet || !p.group.is_main());
    let start = Instant::now();
    let preds = vqa_task::run(
        &p.task.model,
        &p.split,
        p.selection,
        &p.settings,
        answering,
        p.device,
        &|n| progress.inc(n),
    )?;
    progress.finish_and_clear();
    // every rank's predictions, in item order, on rank 0 (which alone writes)
    let Some(preds) = crate::train::dist::gather_in_item_order(p.group.as_ref(), preds)? else {
        return Ok(());
    };
    let seconds = start.elapsed().as_secs_f64();
    let results = result_files::vqa_results(&preds);
    let truth: Option<Vec<vqa::VqaGroundTruth>> =
        preds.iter().map(|q| q.item.truth.clone()).collect();
    let mut prov = provenance(c, &p, preds.len(), seconds);
    if let (Some(m), Some(path)) = (prov.as_object_mut(), &a.rank_answers) {
        drop_generation_keys(m);
        m.insert("rank_answers".into(), json!(path));
        m.insert("k_test".into(), json!(p.settings.k_test));
    }
    let mut metrics = json!({"task": "vqa", "provenance": prov});
    let report = match &truth {
        Some(t) if !t.is_empty() => {
            let answered: Vec<(String, String)> = preds
                .iter()
                .map(|q| (q.item.question_id.clone(), q.answer.clone()))
                .collect();
            let r = vqa::score(t, &answered, a.mode)?;
            metrics["vqa"] = serde_json::to_value(&r)?;
            Some(r)
        }
        _ => {
            metrics["note"] = json!(format!(
                "split `{}` has questions without answers: results only, metrics skipped",
                p.split.split
            ));
            None
        }
    };
    create_out(&c.out)?;
    write_json(&c.out.join("results.json"), &results)?;
    let (questions, annotations) = result_files::vqa_ground_truth(&preds);
    write_json(&c.out.join("questions.json"), &questions)?;
    if report.is_some() {
        write_json(&c.out.join("annotations.json"), &annotations)?;
    }
    if c.save_tokens {
        write_tokens(
            &c.out,
            preds.iter().map(|q| (&q.item.question_id, &q.tokens)),
        )?;
    }
    write_json(&c.out.join("metrics.json"), &metrics)?;
    println!(
        "vqa: {} questions of `{}` split `{}` in {:.1} s ({:.1} questions/s)",
        preds.len(),
        p.split.dataset,
        p.split.split,
        seconds,
        preds.len() as f64 / seconds.max(1e-9)
    );
    match report {
        Some(r) => {
            println!("  accuracy ({:?} vqaEval) {:.2}", a.mode, r.overall);
            for (t, v) in &r.per_answer_type {
                println!("    {t:<12} {v:.2}");
            }
        }
        None => println!("  no answers in this split: results only, metrics skipped"),
    }
    println!("  results: {}", c.out.join("results.json").display());
    Ok(())
}

fn run_caption(a: CaptionEvalArgs) -> anyhow::Result<()> {
    let c = &a.common;
    let p = prepare(
        c,
        "image_text.v1",
        CAPTION_DEFAULTS,
        TaskParts::VisualDecoder,
    )?;
    let progress = bar(
        p.selection.count(p.split.rows),
        c.quiet || !p.group.is_main(),
    );
    let start = Instant::now();
    let preds = caption_task::run(
        &p.task.model,
        &p.tokenizer,
        &p.split,
        p.selection,
        &p.settings,
        p.device,
        &|n| progress.inc(n),
    )?;
    progress.finish_and_clear();
    // every rank's predictions, in item order, on rank 0 (which alone writes)
    let Some(preds) = crate::train::dist::gather_in_item_order(p.group.as_ref(), preds)? else {
        return Ok(());
    };
    let seconds = start.elapsed().as_secs_f64();
    let results = result_files::caption_results(&preds);
    let mut metrics =
        json!({"task": "caption", "provenance": provenance(c, &p, preds.len(), seconds)});
    let report = caption::score_generated(
        preds.iter().map(|q| {
            (
                q.item.image_id.as_str(),
                q.caption.as_str(),
                &q.item.references[..],
            )
        }),
        a.meteor_jar.as_deref(),
    )?;
    if let Some(r) = &report {
        metrics["caption"] =
            json!({"images": r.images, "metrics": r.metrics, "skipped": r.skipped});
    } else {
        metrics["note"] = json!(format!(
            "split `{}` has images without reference captions: results only, metrics skipped",
            p.split.split
        ));
    }
    create_out(&c.out)?;
    write_json(&c.out.join("results.json"), &results)?;
    if report.is_some() {
        write_json(
            &c.out.join("references.json"),
            &result_files::coco_references(&preds),
        )?;
    }
    if c.save_tokens {
        write_tokens(&c.out, preds.iter().map(|q| (&q.item.image_id, &q.tokens)))?;
    }
    write_json(&c.out.join("metrics.json"), &metrics)?;
    println!(
        "caption: {} images of `{}` split `{}` in {:.1} s ({:.1} images/s)",
        preds.len(),
        p.split.dataset,
        p.split.split,
        seconds,
        preds.len() as f64 / seconds.max(1e-9)
    );
    match report {
        Some(r) => {
            for (k, v) in &r.metrics {
                println!("  {k:<8} {v:.4}");
            }
            for (k, why) in &r.skipped {
                println!("  {k:<8} — {why}");
            }
        }
        None => println!("  no reference captions in this split: results only, metrics skipped"),
    }
    println!("  results: {}", c.out.join("results.json").display());
    Ok(())
}

fn run_retrieval(a: RetrievalEvalArgs, kind: RetrievalKind) -> anyhow::Result<()> {
    let c = &a.common;
    let schema = match kind {
        RetrievalKind::Image => "image_text.v1",
        RetrievalKind::Video => "video_text.v1",
    };
    let mut p = prepare(c, schema, NO_GENERATION, TaskParts::Retrieval)?;
    if let Some(k) = a.k_test {
        anyhow::ensure!(k > 0, "--k-test must be at least 1");
        p.settings.k_test = k;
    }
    // as the reference, every rank encodes every image and text; the ITM re-ranking is sharded
    let selection = ItemSelection {
        rank: 0,
        world_size: 1,
        ..p.selection
    };
    let progress = bar(selection.count(p.split.rows), c.quiet || !p.group.is_main());
    let start = Instant::now();
    let out = retrieval_task::run(
        &p.task.model,
        &p.split,
        kind,
        selection,
        &p.settings,
        p.device,
        p.group.as_ref(),
        &|n| progress.inc(n),
    )?;
    progress.finish_and_clear();
    if !p.group.is_main() {
        return Ok(());
    }
    let seconds = start.elapsed().as_secs_f64();
    let mut prov = provenance(c, &p, out.image_ids.len(), seconds);
    if let Some(m) = prov.as_object_mut() {
        drop_generation_keys(m);
        m.insert("k_test".into(), json!(p.settings.k_test));
        m.insert("texts".into(), json!(out.texts.len()));
    }
    let (mdr_i2t, mdr_t2i) = out.median_ranks;
    let task = match kind {
        RetrievalKind::Image => "retrieval",
        RetrievalKind::Video => "video_retrieval",
    };
    let metrics = json!({"task": task, "retrieval": out.recall,
        "median_rank": {"txt_mdR": mdr_i2t, "img_mdR": mdr_t2i}, "provenance": prov});
    create_out(&c.out)?;
    write_json(&c.out.join("results.json"), &out.recall)?;
    if a.save_scores {
        let tensors = [
            ("sims", &out.sims),
            ("scores_i2t", &out.scores_i2t),
            ("scores_t2i", &out.scores_t2i),
        ];
        tch::Tensor::write_safetensors(&tensors, c.out.join("scores.safetensors"))?;
        let index = json!({"image_ids": out.image_ids, "texts": out.texts,
                           "img2txt": out.img2txt, "txt2img": out.txt2img});
        write_json(&c.out.join("index.json"), &index)?;
    }
    write_json(&c.out.join("metrics.json"), &metrics)?;
    let r = &out.recall;
    println!(
        "retrieval: {} images/clips, {} texts of `{}` split `{}` in {:.1} s (k_test {})",
        out.image_ids.len(),
        out.texts.len(),
        p.split.dataset,
        p.split.split,
        seconds,
        p.settings.k_test
    );
    println!(
        "  TR@1 {:.2}  TR@5 {:.2}  TR@10 {:.2}   IR@1 {:.2}  IR@5 {:.2}  IR@10 {:.2}   r_mean {:.2}",
        r.txt_r1, r.txt_r5, r.txt_r10, r.img_r1, r.img_r5, r.img_r10, r.r_mean
    );
    println!("  MdR  text retrieval {mdr_i2t}  image/clip retrieval {mdr_t2i}");
    println!("  results: {}", c.out.join("results.json").display());
    Ok(())
}

fn run_grounding(a: GroundingEvalArgs) -> anyhow::Result<()> {
    let c = a.common;
    let p = prepare(
        &c,
        "image_grounding.v1",
        NO_GENERATION,
        TaskParts::FusedDecoder,
    )?;
    let mut inputs = a.save_inputs.then(grounding_task::GroundingInputs::default);
    let total = p.selection.count(p.split.count_list_items("sentences")?);
    let progress = bar(total, c.quiet || !p.group.is_main());
    let start = Instant::now();
    let preds = grounding_task::run(
        &p.task.model,
        &p.split,
        p.selection,
        &p.settings,
        p.device,
        &|n| progress.inc(n),
        inputs.as_mut(),
    )?;
    progress.finish_and_clear();
    // every rank's predictions, in item order, on rank 0 (which alone writes)
    let Some(preds) = crate::train::dist::gather_in_item_order(p.group.as_ref(), preds)? else {
        return Ok(());
    };
    let seconds = start.elapsed().as_secs_f64();
    let correct = preds.iter().filter(|q| q.iou >= 0.5).count();
    let accuracy = 100.0 * correct as f64 / preds.len().max(1) as f64;
    let mut prov = provenance(&c, &p, preds.len(), seconds);
    if let Some(m) = prov.as_object_mut() {
        drop_generation_keys(m);
        m.insert(
            "decoding".into(),
            json!("4 greedy coordinate tokens, bbox_prob_mask"),
        );
    }
    let metrics = json!({"task": "grounding", "grounding": {"accuracy": accuracy,
        "correct": correct, "expressions": preds.len(), "iou_threshold": 0.5}, "provenance": prov});
    create_out(&c.out)?;
    write_json(&c.out.join("results.json"), &preds)?;
    if let Some(inp) = inputs.filter(|i| !i.images.is_empty()) {
        let images = tch::Tensor::cat(&inp.images, 0).contiguous();
        let ids = tch::Tensor::cat(&inp.input_ids, 0);
        tch::Tensor::write_safetensors(
            &[("images", &images), ("input_ids", &ids)],
            c.out.join("inputs.safetensors"),
        )?;
    }
    write_json(&c.out.join("metrics.json"), &metrics)?;
    println!(
        "grounding: {} expressions of `{}` split `{}` in {:.1} s",
        preds.len(),
        p.split.dataset,
        p.split.split,
        seconds
    );
    println!(
        "  accuracy (IoU >= 0.5) {accuracy:.2}  ({correct} of {})",
        preds.len()
    );
    println!("  results: {}", c.out.join("results.json").display());
    Ok(())
}

fn run_video_qa(a: VideoQaEvalArgs) -> anyhow::Result<()> {
    let c = &a.common;
    let p = prepare(c, "video_text.v1", NO_GENERATION, TaskParts::FusedDecoder)?;
    let list = match &a.answer_list {
        Some(path) => AnswerList::from_file(path, &p.tokenizer)?,
        None => {
            let from = EvalSplit::open(&c.data, "video_text.v1", &a.answers_from)?;
            AnswerList::new(video_qa_task::split_answers(&from)?, &p.tokenizer)?
        }
    };
    let total = p.selection.count(p.split.count_list_items("questions")?);
    let progress = bar(total, c.quiet || !p.group.is_main());
    let start = Instant::now();
    let preds = video_qa_task::run(
        &p.task.model,
        &p.split,
        &list,
        p.selection,
        &p.settings,
        p.device,
        &|n| progress.inc(n),
    )?;
    progress.finish_and_clear();
    // every rank's predictions, in item order, on rank 0 (which alone writes)
    let Some(preds) = crate::train::dist::gather_in_item_order(p.group.as_ref(), preds)? else {
        return Ok(());
    };
    let seconds = start.elapsed().as_secs_f64();
    let correct = preds
        .iter()
        .filter(|q| q.prediction == q.item.answer)
        .count();
    let accuracy = 100.0 * correct as f64 / preds.len().max(1) as f64;
    let mut prov = provenance(c, &p, preds.len(), seconds);
    if let Some(m) = prov.as_object_mut() {
        drop_generation_keys(m);
        m.insert("k_test".into(), json!(p.settings.k_test));
        m.insert(
            "answer_list".into(),
            match &a.answer_list {
                Some(path) => json!(path),
                None => json!(format!(
                    "answers of split `{}` ({})",
                    a.answers_from,
                    list.answers.len()
                )),
            },
        );
    }
    let results: Vec<Value> = preds
        .iter()
        .map(|q| {
            json!({"question_id": q.item.question_id, "video_id": q.item.video_id,
                        "answer": q.prediction, "probability": q.probability})
        })
        .collect();
    let metrics = json!({"task": "video_qa", "video_qa": {"accuracy": accuracy, "correct": correct,
        "questions": preds.len(), "answers": list.answers.len()}, "provenance": prov});
    create_out(&c.out)?;
    write_json(&c.out.join("results.json"), &results)?;
    write_json(&c.out.join("metrics.json"), &metrics)?;
    println!(
        "video-qa: {} questions of `{}` split `{}` in {:.1} s ({} candidate answers, k_test {})",
        preds.len(),
        p.split.dataset,
        p.split.split,
        seconds,
        list.answers.len(),
        p.settings.k_test
    );
    println!(
        "  accuracy (exact match) {accuracy:.2}  ({correct} of {})",
        preds.len()
    );
    println!("  results: {}", c.out.join("results.json").display());
    Ok(())
}

fn run_video_caption(a: VideoCaptionEvalArgs) -> anyhow::Result<()> {
    let c = &a.common;
    let p = prepare(
        c,
        "video_text.v1",
        video_caption_task::VIDEO_CAPTION_DEFAULTS,
        TaskParts::VisualDecoder,
    )?;
    let prompt = match &a.prompt {
        Some(pr) => pr.clone(),
        None => config_prompt(&c.config)?.unwrap_or_else(|| video_caption_task::PROMPT.into()),
    };
    let progress = bar(
        p.selection.count(p.split.rows),
        c.quiet || !p.group.is_main(),
    );
    let start = Instant::now();
    let preds = video_caption_task::run(
        &p.task.model,
        &p.tokenizer,
        &p.split,
        &prompt,
        p.selection,
        &p.settings,
        p.device,
        &|n| progress.inc(n),
    )?;
    progress.finish_and_clear();
    // every rank's predictions, in item order, on rank 0 (which alone writes)
    let Some(preds) = crate::train::dist::gather_in_item_order(p.group.as_ref(), preds)? else {
        return Ok(());
    };
    let seconds = start.elapsed().as_secs_f64();
    let results: serde_json::Map<String, Value> = preds
        .iter()
        .map(|q| (q.item.video_id.clone(), json!(q.caption)))
        .collect();
    let mut prov = provenance(c, &p, preds.len(), seconds);
    if let Some(m) = prov.as_object_mut() {
        m.insert("prompt".into(), json!(prompt));
    }
    let mut metrics = json!({"task": "video_caption", "provenance": prov});
    let report = caption::score_generated(
        preds.iter().map(|q| {
            (
                q.item.video_id.as_str(),
                q.caption.as_str(),
                &q.item.references[..],
            )
        }),
        a.meteor_jar.as_deref(),
    )?;
    if let Some(r) = &report {
        metrics["caption"] = json!({"clips": r.images, "metrics": r.metrics, "skipped": r.skipped});
    } else {
        metrics["note"] = json!("clips without reference captions: results only, metrics skipped");
    }
    create_out(&c.out)?;
    write_json(&c.out.join("results.json"), &results)?;
    if c.save_tokens {
        write_tokens(&c.out, preds.iter().map(|q| (&q.item.video_id, &q.tokens)))?;
    }
    write_json(&c.out.join("metrics.json"), &metrics)?;
    println!(
        "video-caption: {} clips of `{}` split `{}` in {:.1} s",
        preds.len(),
        p.split.dataset,
        p.split.split,
        seconds
    );
    if let Some(r) = report {
        for (k, v) in &r.metrics {
            println!("  {k:<8} {v:.4}");
        }
    }
    println!("  results: {}", c.out.join("results.json").display());
    Ok(())
}

/// The task YAML's `prompt` key, if any.
fn config_prompt(path: &Path) -> anyhow::Result<Option<String>> {
    let text = std::fs::read_to_string(path)?;
    let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text)?;
    Ok(v.get("prompt").and_then(|p| p.as_str()).map(String::from))
}

fn run_statements(c: CommonEvalArgs, task: StatementTask) -> anyhow::Result<()> {
    let parts = TaskParts::Classifier {
        inputs: task.head_inputs(),
        classes: task.classes(),
    };
    let p = prepare(&c, "image_statement.v1", NO_GENERATION, parts)?;
    let head = p
        .task
        .classifier
        .as_ref()
        .context("the classifier head was not built")?;
    let progress = bar(
        p.selection.count(p.split.rows),
        c.quiet || !p.group.is_main(),
    );
    let start = Instant::now();
    let preds = statement_task::run(
        task,
        &p.task.model,
        head,
        &p.split,
        p.selection,
        &p.settings,
        p.device,
        &|n| progress.inc(n),
    )?;
    progress.finish_and_clear();
    // every rank's predictions, in item order, on rank 0 (which alone writes)
    let Some(preds) = crate::train::dist::gather_in_item_order(p.group.as_ref(), preds)? else {
        return Ok(());
    };
    let seconds = start.elapsed().as_secs_f64();
    let correct = preds
        .iter()
        .filter(|q| q.predicted == q.item.label as i64)
        .count();
    let accuracy = 100.0 * correct as f64 / preds.len().max(1) as f64;
    let mut prov = provenance(&c, &p, preds.len(), seconds);
    if let Some(m) = prov.as_object_mut() {
        drop_generation_keys(m);
        m.insert("head".into(), json!(task.head_doc()));
    }
    let results: Vec<Value> = preds
        .iter()
        .map(|q| match task {
            StatementTask::SnliVe => json!({"pair_id": q.item.statement_id,
                "image": q.item.sample_id, "predicted": q.predicted, "label": q.item.label}),
            StatementTask::Nlvr2 => json!({"identifier": q.item.statement_id,
                "pair": q.item.sample_id, "predicted": q.predicted, "label": q.item.label}),
        })
        .collect();
    let key = task.name().replace('-', "_");
    let metrics = json!({"task": key, key.clone(): {"accuracy": accuracy, "correct": correct,
        "statements": preds.len()}, "provenance": prov});
    create_out(&c.out)?;
    write_json(&c.out.join("results.json"), &results)?;
    write_json(&c.out.join("metrics.json"), &metrics)?;
    println!(
        "{}: {} statements of `{}` split `{}` in {:.1} s",
        task.name(),
        preds.len(),
        p.split.dataset,
        p.split.split,
        seconds
    );
    println!("  accuracy {accuracy:.2}  ({correct} of {})", preds.len());
    println!("  results: {}", c.out.join("results.json").display());
    Ok(())
}
