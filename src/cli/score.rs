//! `mplug score`: the official metrics over a results file, ours or one the original code wrote.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use crate::eval::vqa_accuracy::VqaEvalMode;
use crate::eval::{caption, vqa};
use crate::shards::commit::write_atomic;

/// Score a results file with the official metrics (VQA accuracy; COCO caption BLEU, ROUGE-L, CIDEr-D).
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
    }
    Ok(())
}
