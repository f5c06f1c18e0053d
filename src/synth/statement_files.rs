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
use super::scene::{GRAY_SHAPE_COLOURS, SHAPE_COLOURS, Scene, Shape};
use crate::error::{Error, Result};

/// NLVR2 statements written per image pair: half hold, half do not.
const STATEMENTS_PER_PAIR: usize = 4;

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

/// "a" or "an" before a word.
fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// A statement about a pair that holds (`want`) or does not, of one of three kinds: which image
/// has more shapes, a shape in both images, a colour in one named image.
///
/// The truth is chosen first and the statement made to fit it, as NLVR2 balances its labels (each
/// sentence is written for pairs where it holds and pairs where it does not): a set where a kind's
/// label follows from its wording alone could be fitted from the text, never looking at the images.
/// A kind whose truth is fixed for this pair (equal counts; no shape, or every shape, in common)
/// passes to the next kind whatever `want` is; the colour kind always fits.
fn pair_statement(left: &Scene, right: &Scene, want: bool, rng: &mut SynthRng) -> String {
    let (l, r) = (left.objects.len(), right.objects.len());
    let first = rng.range(0, 2);
    for k in 0..3 {
        match (first + k) % 3 {
            // equal counts: neither side has more, so the sentence could only be false, and a
            // sentence that is false more often than true is a text cue
            0 if l == r => {}
            0 => {
                // subject = the side with more shapes when the statement should hold
                let (a, b) = if (l > r) == want {
                    ("left", "right")
                } else {
                    ("right", "left")
                };
                return format!("The {a} image contains more shapes than the {b} image.");
            }
            1 => {
                let has = |sc: &Scene, s: Shape| sc.objects.iter().any(|o| o.shape == s);
                let (shared, not): (Vec<Shape>, Vec<Shape>) = Shape::ALL
                    .iter()
                    .partition(|s| has(left, **s) && has(right, **s));
                // only pairs where the sentence could go either way, whatever `want` is: else
                // this kind's sentences would hold more (or less) often than not
                if !shared.is_empty() && !not.is_empty() {
                    let fits = if want { shared } else { not };
                    let s = rng.pick(&fits).noun();
                    return format!("Both images contain a {s}.");
                }
            }
            _ => return colour_statement(left, right, want, rng),
        }
    }
    colour_statement(left, right, want, rng)
}

/// "There is a {colour} shape in the {side} image." that holds (`want`) or does not.
fn colour_statement(left: &Scene, right: &Scene, want: bool, rng: &mut SynthRng) -> String {
    let (side, scene) = if rng.unit() < 0.5 {
        ("left", left)
    } else {
        ("right", right)
    };
    let fits_want = |c: &&str| scene.objects.iter().any(|o| o.colour.name == *c) == want;
    // the colours the scene's palette could have drawn, so that each sentence holds about as
    // often as not (naming white in a colour picture would nearly always be false: a text cue)
    let gray = scene
        .objects
        .iter()
        .all(|o| GRAY_SHAPE_COLOURS.contains(&o.colour));
    let palette = if gray {
        &GRAY_SHAPE_COLOURS[..]
    } else {
        &SHAPE_COLOURS[..]
    };
    let mut fits: Vec<&str> = palette.iter().map(|c| c.name).filter(fits_want).collect();
    if fits.is_empty() {
        // a gray picture holding both gray colours: any colour of the other palette is absent
        fits = SHAPE_COLOURS
            .iter()
            .map(|c| c.name)
            .filter(fits_want)
            .collect();
    }
    // 1–4 objects: a present colour always exists, and an absent one in one of the palettes
    let c = *rng.pick(&fits);
    format!("There is {} {c} shape in the {side} image.", article(c))
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

/// Writes `snli_ve/` (three statements per image) and `nlvr2/` (four statements per pair of
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
            for s in 0..STATEMENTS_PER_PAIR {
                let holds = s % 2 == 0;
                let sentence = pair_statement(&pair[0].scene, &pair[1].scene, holds, &mut rng);
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
