//! `mplug score`: the official metrics over a results file, ours or one the original code wrote.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use crate::eval::retrieval::{
    image_to_text_ranks, median_rank, retrieval_recall, text_to_image_ranks,
};
use crate::eval::retrieval_files::{check_shapes, read_index, read_scores};
use crate::eval::vqa_accuracy::VqaEvalMode;
use crate::eval::{caption, grounding, vqa};
use crate::shards::commit::write_atomic;

/// Score a results file with the official metrics (VQA accuracy; COCO caption BLEU, ROUGE-L,
/// CIDEr-D; retrieval recall; grounding accuracy).
#[derive(Debug, Subcommand)]
pub enum ScoreCommand {
    /// VQA accuracy of an EvalAI results file `[{question_id, answer}]` against VQA v2 annotations.
    ///
    /// Overall, per answer type and per question type, in percent rounded as the official
    /// vqaEval.py. The results must answer exactly the annotated questions.
    Vqa(VqaScoreArgs),
    /// BLEU-1..4, ROUGE-L and CIDEr-D of a COCO results file `[{image_id, caption}]` against a COCO
    /// captions file, after pycocoevalcap's PTB tokenisation.
    ///
    /// The images scored are those of the results file (as COCOEvalCap); CIDEr-D's document
    /// frequencies come from their references. METEOR runs the official jar given with
    /// --meteor-jar (needs Java); SPICE is not computed.
    Caption(CaptionScoreArgs),
    /// Retrieval recall (TR/IR R@1/5/10, their means, r_mean, MdR) of two score matrices, as the
    /// reference's `itm_eval`.
    ///
    /// --scores: safetensors with `scores_i2t` [images, texts] and `scores_t2i` [texts, images]
    /// (`mplug eval retrieval --save-scores` writes it; numpy users: `safetensors.numpy.save_file`).
    /// --annotations: that run's `index.json`, or the reference's retrieval test file
    /// (`[{image, caption: [...]}]`). Ties are ordered as numpy's stable argsort reversed.
    Retrieval(RetrievalScoreArgs),
    /// Grounding accuracy (IoU ≥ 0.5) of `[{sent_id, bbox: [x, y, w, h]}]` in source pixels (the
    /// `results.json` of `mplug eval grounding` is read as it is) against RefCOCO annotations.
    ///
    /// --annotations: refer's `refs(unc).p` with its `instances.json`, or TransVG `.pth` split
    /// files. IoU is invariant to the reference's resize-and-pad, so source pixels give its numbers.
    Grounding(GroundingScoreArgs),
}

/// Options of `mplug score retrieval`.
#[derive(Debug, Args)]
pub struct RetrievalScoreArgs {
    /// `scores.safetensors` with `scores_i2t` and `scores_t2i`.
    #[arg(long, value_name = "FILE")]
    scores: PathBuf,
    /// `index.json` (`img2txt`, `txt2img`) or a retrieval test file `[{image, caption: [...]}]`.
    #[arg(long, value_name = "FILE")]
    annotations: PathBuf,
    /// Also write the report (recalls, MdR, every query's rank) here as JSON.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// Options of `mplug score grounding`.
#[derive(Debug, Args)]
pub struct GroundingScoreArgs {
    /// The results file: `[{"sent_id": 1, "bbox": [x, y, w, h]}, …]`.
    #[arg(long, value_name = "FILE")]
    results: PathBuf,
    /// `refs(unc).p` + `instances.json`, or `.pth` split files.
    #[arg(long, value_name = "FILE", num_args = 1.., required = true)]
    annotations: Vec<PathBuf>,
    /// The split scored: every expression of it must have a result, and only those.
    #[arg(long)]
    split: Option<String>,
    /// Also write the report (with every expression's IoU) here as JSON.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// Options of `mplug score vqa`.
#[derive(Debug, Args)]
pub struct VqaScoreArgs {
    /// The results file: `[{"question_id": 1, "answer": "yes"}, …]`.
    #[arg(long, value_name = "FILE")]
    results: PathBuf,
    /// VQA v2 annotations (`v2_mscoco_val2014_annotations.json`).
    #[arg(long, value_name = "FILE")]
    annotations: PathBuf,
    /// `official`: GT-Vision-Lab's vqaEval.py since 2021 (report this); `legacy`: the older code
    /// that mPLUG's and LAVIS's copies keep (always normalises the prediction).
    #[arg(long = "vqa-eval", value_enum, default_value_t = VqaEvalMode::Official)]
    mode: VqaEvalMode,
    /// Also write the whole report (with per-question accuracies) here as JSON.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// Options of `mplug score caption`.
#[derive(Debug, Args)]
pub struct CaptionScoreArgs {
    /// The results file: `[{"image_id": 1, "caption": "a dog"}, …]`.
    #[arg(long, value_name = "FILE")]
    results: PathBuf,
    /// A COCO captions file (`captions_val2014.json`, or the Karpathy test split in COCO format).
    #[arg(long, value_name = "FILE")]
    annotations: PathBuf,
    /// Also write the whole report (with per-image scores) here as JSON.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Write the tokenised references and results here (to see why a caption scored as it did).
    #[arg(long, value_name = "FILE")]
    tokenized: Option<PathBuf>,
    /// METEOR 1.5's jar (pycocoevalcap ships it as `pycocoevalcap/meteor/meteor-1.5.jar`, with its
    /// data); also read from $MPLUG_METEOR_JAR. Run with `java`; without it METEOR is skipped.
    #[arg(long, value_name = "JAR", env = "MPLUG_METEOR_JAR")]
    meteor_jar: Option<PathBuf>,
}

fn write_json(path: &Path, value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value)?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)?;
    Ok(())
}

/// Runs `mplug score …`.
pub fn run(cmd: ScoreCommand) -> anyhow::Result<()> {
    match cmd {
        ScoreCommand::Vqa(a) => {
            let truth = vqa::read_annotations(&a.annotations)?;
            let results = vqa::read_results(&a.results)?;
            let report = vqa::score(&truth, &results, a.mode)?;
            println!(
                "VQA accuracy ({:?} vqaEval): {:.2}  over {} questions",
                a.mode, report.overall, report.questions
            );
            for (t, v) in &report.per_answer_type {
                println!("  {t:<12} {v:.2}");
            }
            if let Some(out) = &a.out {
                write_json(out, &report)?;
            }
        }
        ScoreCommand::Caption(a) => {
            let refs = caption::read_references(&a.annotations)?;
            let results = caption::read_results(&a.results)?;
            let (report, tokenized) = caption::score(&refs, &results, a.meteor_jar.as_deref())?;
            println!("captions: {} images scored", report.images);
            for (k, v) in &report.metrics {
                println!("  {k:<8} {v:.4}");
            }
            for (k, why) in &report.skipped {
                println!("  {k:<8} — {why}");
            }
            let left = caption::unanswered(&refs, &results);
            if left > 0 {
                println!(
                    "  note: {left} annotated image(s) have no result caption and were not scored"
                );
            }
            if let Some(out) = &a.out {
                write_json(out, &report)?;
            }
            if let Some(path) = &a.tokenized {
                write_json(path, &tokenized)?;
            }
        }
        ScoreCommand::Retrieval(a) => score_retrieval(&a)?,
        ScoreCommand::Grounding(a) => {
            let refs = grounding::read_references(&a.annotations)?;
            let results = grounding::read_results(&a.results)?;
            let report = grounding::score(&refs, &results, a.split.as_deref())?;
            println!(
                "grounding: accuracy (IoU >= 0.5) {:.2}  ({} of {}), mean IoU {:.4}",
                report.accuracy, report.correct, report.expressions, report.mean_iou
            );
            for (split, acc) in &report.per_split {
                println!("  {split:<10} {acc:.2}");
            }
            if let Some(out) = &a.out {
                write_json(out, &report)?;
            }
        }
    }
    Ok(())
}

fn score_retrieval(a: &RetrievalScoreArgs) -> anyhow::Result<()> {
    let scores = read_scores(&a.scores)?;
    let index = read_index(&a.annotations)?;
    check_shapes(&scores, &index)?;
    let recall = retrieval_recall(&scores.i2t, &scores.t2i, &index.txt2img, &index.img2txt);
    let text_ranks = image_to_text_ranks(&scores.i2t, &index.img2txt);
    let image_ranks = text_to_image_ranks(&scores.t2i, &index.txt2img);
    let (txt_mdr, img_mdr) = (median_rank(&text_ranks), median_rank(&image_ranks));
    println!(
        "retrieval: {} images, {} texts",
        index.img2txt.len(),
        index.txt2img.len()
    );
    println!(
        "  TR R@1/5/10 {:.2} / {:.2} / {:.2}   IR R@1/5/10 {:.2} / {:.2} / {:.2}   r_mean {:.2}",
        recall.txt_r1,
        recall.txt_r5,
        recall.txt_r10,
        recall.img_r1,
        recall.img_r5,
        recall.img_r10,
        recall.r_mean
    );
    println!("  MdR text {txt_mdr}  image {img_mdr}");
    if let Some(out) = &a.out {
        let report = serde_json::json!({"recall": recall,
            "median_rank": {"txt_mdR": txt_mdr, "img_mdR": img_mdr},
            "text_ranks": text_ranks, "image_ranks": image_ranks});
        write_json(out, &report)?;
    }
    Ok(())
}
