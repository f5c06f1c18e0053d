//! The shapes world as VQA v2: the official question and annotation files, with ten human-style
//! answers per question, over the same images.
//!
//! Questions are about what the scene holds — how many shapes, the colour of a shape, whether a
//! shape is present, where a coloured shape is — so a model can learn them and `mplug score vqa` has
//! a meaningful ground truth. Answers disagree a little, as real annotators do (a number written as
//! a word, a neighbouring count, "not sure"), so the leave-one-out accuracy and the official
//! normalisation are exercised. Images are linked (hard links, or copies) under the official names,
//! `images/{train,val}2014/COCO_{train,val}2014_<id:012>.jpg`, so `mplug ingest vqa --images DIR/images`
//! reads them as it reads COCO.

use std::path::Path;

use serde_json::{Value, json};

use super::files::{SynthImage, link};
use super::rng::SynthRng;
use super::scene::{Scene, Shape};
use crate::error::{Error, Result};

const NUMBER_WORDS: [&str; 6] = ["zero", "one", "two", "three", "four", "five"];

/// One question with its ten answers.
struct Question {
    text: String,
    question_type: &'static str,
    answer_type: &'static str,
    answers: Vec<String>,
}

/// Ten answers: mostly `truth`, the rest drawn from `variants` (each a plausible human slip).
fn ten_answers(rng: &mut SynthRng, truth: &str, variants: &[String]) -> Vec<String> {
    (0..10)
        .map(|_| {
            if variants.is_empty() || rng.unit() < 0.85 {
                truth.to_string()
            } else {
                rng.pick(variants).clone()
            }
        })
        .collect()
}

fn questions(scene: &Scene, rng: &mut SynthRng) -> Vec<Question> {
    let n = scene.objects.len();
    let mut out = Vec::new();
    let count = n.to_string();
    let count_variants = vec![
        NUMBER_WORDS[n.min(5)].to_string(),
        (n + 1).to_string(),
        (n.max(2) - 1).to_string(),
    ];
    out.push(Question {
        text: "How many shapes are in the picture?".into(),
        question_type: "how many",
        answer_type: "number",
        answers: ten_answers(rng, &count, &count_variants),
    });
    let first = scene.objects[0];
    out.push(Question {
        text: format!("What color is the {}?", first.shape.noun()),
        question_type: "what color is the",
        answer_type: "other",
        answers: ten_answers(rng, first.colour.name, &["not sure".to_string()]),
    });
    let asked = *rng.pick(&Shape::ALL);
    let present = scene.objects.iter().any(|o| o.shape == asked);
    out.push(Question {
        text: format!("Is there a {} in the picture?", asked.noun()),
        question_type: "is there a",
        answer_type: "yes/no",
        answers: ten_answers(rng, if present { "yes" } else { "no" }, &[]),
    });
    let o = *rng.pick(&scene.objects);
    out.push(Question {
        text: format!("Where is the {} {}?", o.colour.name, o.shape.noun()),
        question_type: "where is the",
        answer_type: "other",
        answers: ten_answers(rng, o.position(), &[format!("{} side", o.position())]),
    });
    out
}

/// The most frequent answer (first on ties), as VQA v2's `multiple_choice_answer`.
fn majority(answers: &[String]) -> String {
    let mut best = (0, String::new());
    for a in answers {
        let c = answers.iter().filter(|b| *b == a).count();
        if c > best.0 {
            best = (c, a.clone());
        }
    }
    best.1
}

/// Writes `vqa/` question and annotation files for `images` (already written under `out/images`)
/// and links the images under their VQA names. Returns the files written, relative to `out`.
pub fn write_vqa_v2(out: &Path, images: &[SynthImage], seed: u64) -> Result<Vec<String>> {
    let dir = out.join("vqa");
    fs_err::create_dir_all(&dir)?;
    let mut written = Vec::new();
    let mut question_id = 0u64;
    for subtype in ["train2014", "val2014"] {
        fs_err::create_dir_all(out.join("images").join(subtype))?;
        let mut qs = Vec::new();
        let mut anns = Vec::new();
        // VQA v2 train is COCO train; its val holds the val and test images (as Karpathy's splits).
        let wanted = |im: &&SynthImage| (im.split == "train") == (subtype == "train2014");
        for im in images.iter().filter(wanted) {
            let name = format!("COCO_{subtype}_{:012}.jpg", im.id);
            link(
                &out.join("images").join(im.folder).join(&im.file_name),
                &out.join("images").join(subtype).join(name),
            )?;
            // a stream of its own per image: adding questions never changes the images or captions
            let mut rng = SynthRng::new(seed, (1 << 40) + im.id);
            for q in questions(&im.scene, &mut rng) {
                question_id += 1;
                qs.push(json!({"image_id": im.id, "question": q.text, "question_id": question_id}));
                let answers: Vec<Value> = q
                    .answers
                    .iter()
                    .enumerate()
                    .map(|(i, a)| json!({"answer": a, "answer_confidence": "yes", "answer_id": i + 1}))
                    .collect();
                anns.push(json!({
                    "question_type": q.question_type, "multiple_choice_answer": majority(&q.answers),
                    "answers": answers, "image_id": im.id, "answer_type": q.answer_type,
                    "question_id": question_id
                }));
            }
        }
        let header = |extra: (&str, Value)| {
            let mut doc = json!({
                "info": {"description": "mplug synthetic shapes world, VQA v2 format", "version": "2.0", "year": 2026},
                "task_type": "Open-Ended", "data_type": "mscoco", "data_subtype": subtype,
                "license": {"name": "CC0", "url": ""},
            });
            doc[extra.0] = extra.1;
            doc
        };
        let files = [
            (
                format!("v2_OpenEnded_mscoco_{subtype}_questions.json"),
                header(("questions", Value::Array(qs))),
            ),
            (
                format!("v2_mscoco_{subtype}_annotations.json"),
                header(("annotations", Value::Array(anns))),
            ),
        ];
        for (file, doc) in files {
            let bytes = serde_json::to_vec(&doc)
                .map_err(|e| Error::internal_caused("JSON serialisation failed", e))?;
            fs_err::write(dir.join(&file), bytes)?;
            written.push(format!("vqa/{file}"));
        }
    }
    Ok(written)
}
