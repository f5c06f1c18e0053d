//! The shapes world as SNLI-VE (an image, a hypothesis, entailment/neutral/contradiction) and NLVR2
//! (two images, a sentence, True/False), in the official JSON-lines formats, over the same images.
//!
//! Statements are decided by the scenes: counts, colours and shapes present, and for NLVR2
//! comparisons between the two images, so the labels are learnable and checkable. Images are linked
//! (hard links, or copies) under the names each dataset's readers expect: SNLI-VE
//! `snli_ve/images/<Flickr30K_ID>.jpg`, NLVR2 `nlvr2/images/<split>[/<directory>]/<pair>-img{0,1}.png`.

use std::path::Path;

use serde_json::{Value, json};

use super::files::{SynthImage, link};
use super::rng::SynthRng;
use super::scene::{SHAPE_COLOURS, Scene, Shape};
use crate::error::{Error, Result};

const COUNT_WORDS: [&str; 7] = ["no", "one", "two", "three", "four", "five", "six"];

fn plural(noun: &str, n: usize) -> String {
    if n == 1 {
        noun.to_string()
    } else {
        format!("{noun}s")
    }
}

/// A statement true (`Some(true)`), false (`Some(false)`) or undecidable (`None`) of one scene.
fn single_statement(scene: &Scene, rng: &mut SynthRng, want: Option<bool>) -> String {
    let n = scene.objects.len();
    match want {
        None => (*rng.pick(&[
            "The shapes were drawn by a child.",
            "The picture was made yesterday.",
            "Someone is about to erase the picture.",
        ]))
        .to_string(),
        Some(truth) if rng.unit() < 0.5 => {
            let k = if truth {
                n
            } else {
                n + 1 + rng.range(0, 2) as usize
            };
            format!(
                "There {} {} {} in the picture.",
                if k == 1 { "is" } else { "are" },
                COUNT_WORDS[k.min(6)],
                plural("shape", k)
            )
        }
        Some(true) => {
            let o = rng.pick(&scene.objects);
            format!("There is a {} {}.", o.colour.name, o.shape.noun())
        }
        Some(false) => {
            // a colour-shape combination the scene does not hold (there always is one: 18 > 4)
            let absent: Vec<(&str, Shape)> = SHAPE_COLOURS
                .iter()
                .flat_map(|c| Shape::ALL.iter().map(move |s| (c.name, *s)))
                .filter(|(c, s)| {
                    !scene
                        .objects
                        .iter()
                        .any(|o| o.colour.name == *c && o.shape == *s)
                })
                .collect();
            let (c, s) = rng.pick(&absent);
            format!("There is a {c} {}.", s.noun())
        }
    }
}

/// A statement about a pair and whether it holds.
fn pair_statement(left: &Scene, right: &Scene, rng: &mut SynthRng) -> (String, bool) {
    let (l, r) = (left.objects.len(), right.objects.len());
    match rng.range(0, 3) {
        0 => (
            "The left image contains more shapes than the right image.".to_string(),
            l > r,
        ),
        1 => {
            let s = *rng.pick(&Shape::ALL);
            let has = |sc: &Scene| sc.objects.iter().any(|o| o.shape == s);
            (
                format!("Both images contain a {}.", s.noun()),
                has(left) && has(right),
            )
        }
        _ => {
            let c = rng.pick(&SHAPE_COLOURS).name;
            (
                format!("There is a {c} shape in the right image."),
                right.objects.iter().any(|o| o.colour.name == c),
            )
        }
    }
}

fn write_lines(path: &Path, rows: &[Value]) -> Result<()> {
    let mut text = String::new();
    for r in rows {
        text.push_str(
            &serde_json::to_string(r)
                .map_err(|e| Error::internal_caused("JSON serialisation failed", e))?,
        );
        text.push('\n');
    }
    fs_err::write(path, text)?;
    Ok(())
}

/// The dataset split names for the Karpathy-style splits of the images.
fn split_of(split: &str, test_name: &'static str) -> &'static str {
    match split {
        "train" => "train",
        "val" => "dev",
        _ => test_name,
    }
}

/// Writes `snli_ve/` (three statements per image) and `nlvr2/` (two statements per pair of
/// consecutive images of a split); returns the annotation files written, relative to `out`.
pub fn write_statements(out: &Path, images: &[SynthImage], seed: u64) -> Result<Vec<String>> {
    let source = |im: &SynthImage| out.join("images").join(im.folder).join(&im.file_name);
    let mut written = Vec::new();

    let snli = out.join("snli_ve");
    fs_err::create_dir_all(snli.join("images"))?;
    for split in ["train", "dev", "test"] {
        let mut rows = Vec::new();
        for im in images
            .iter()
            .filter(|im| split_of(im.split, "test") == split)
        {
            link(
                &source(im),
                &snli.join("images").join(format!("{}.jpg", im.id)),
            )?;
            let mut rng = SynthRng::new(seed, (2 << 40) + im.id);
            for (k, (want, label)) in [
                (Some(true), "entailment"),
                (None, "neutral"),
                (Some(false), "contradiction"),
            ]
            .into_iter()
            .enumerate()
            {
                rows.push(json!({
                    "Flickr30K_ID": im.id.to_string(), "pairID": format!("{}#{k}", im.id),
                    "sentence1": im.captions[0], "sentence2": single_statement(&im.scene, &mut rng, want),
                    "gold_label": label,
                }));
            }
        }
        let file = format!("snli_ve_{split}.jsonl");
        write_lines(&snli.join(&file), &rows)?;
        written.push(format!("snli_ve/{file}"));
    }

    let nlvr = out.join("nlvr2");
    fs_err::create_dir_all(&nlvr)?; // a split with fewer than two images has no pair, but a file
    for (split, file) in [
        ("train", "train.json"),
        ("dev", "dev.json"),
        ("test1", "test1.json"),
    ] {
        let members: Vec<&SynthImage> = images
            .iter()
            .filter(|im| split_of(im.split, "test1") == split)
            .collect();
        let mut rows = Vec::new();
        for (k, pair) in members.chunks_exact(2).enumerate() {
            let directory = k % 4; // train images are spread over numbered folders, as NLVR2's
            let dir = if split == "train" {
                nlvr.join("images")
                    .join("train")
                    .join(directory.to_string())
            } else {
                nlvr.join("images").join(split)
            };
            fs_err::create_dir_all(&dir)?;
            let name = format!("{split}-{k}-0");
            for (i, im) in pair.iter().enumerate() {
                link(&source(im), &dir.join(format!("{name}-img{i}.png")))?;
            }
            let mut rng = SynthRng::new(seed, (3 << 40) + pair[0].id);
            for s in 0..2 {
                let (sentence, holds) = pair_statement(&pair[0].scene, &pair[1].scene, &mut rng);
                let mut row = json!({
                    "identifier": format!("{name}-{s}"), "sentence": sentence,
                    "label": if holds { "True" } else { "False" },
                });
                if split == "train" {
                    row["directory"] = json!(directory);
                }
                rows.push(row);
            }
        }
        write_lines(&nlvr.join(file), &rows)?;
        written.push(format!("nlvr2/{file}"));
    }
    Ok(written)
}
