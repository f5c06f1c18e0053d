//! What one loader sample is, per dataset schema: which columns a row group is read with, how many
//! samples a row holds, and the text a sample carries.
//!
//! - [`SampleKind::Caption`] (`image_text.v1`, pre-training and captioning): one sample per image,
//!   a caption drawn per (seed, epoch, position) from the image's captions, `[CLS]` + tokens.
//! - [`SampleKind::Question`] (`image_qa.v1`, VQA fine-tuning): one sample per question, as the
//!   reference's `vqa_dataset` (an image with five questions is seen five times an epoch); the
//!   question as `[CLS]` + tokens truncated to the limit, and every distinct answer as
//!   `[CLS] answer [SEP]` (the reference appends the literal `"[SEP]"`, no truncation) with its
//!   stored weight (count / human answers for VQA, 0.5 for VG-QA).
//! - [`SampleKind::CaptionTarget`] (`image_text.v1`, caption fine-tuning): one sample per caption,
//!   as the reference's `coco_dataset` in training; the raw caption lower-cased (no `pre_caption`:
//!   the reference keeps punctuation, so the model learns the final `.`) with the literal `[SEP]`
//!   appended, as `[CLS]` + tokens truncated to the limit (an over-long caption loses its `[SEP]`,
//!   as HF truncation does).
//! - [`SampleKind::CaptionEach`] (`image_text.v1`, retrieval fine-tuning): one sample per caption
//!   with its stored tokens; samples of one image share the image index ITC/ITM take as positives.
//! - [`SampleKind::Statement`] (`image_statement.v1`, SNLI-VE / NLVR2): one sample per statement,
//!   `[CLS]` + its stored tokens (the pipeline's `pre_caption` 30 words) and its label; an NLVR2
//!   sample carries both images, left first.

use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, Int32Type};

use super::rng::LoaderRng;
use super::text::with_cls;
use crate::error::{Error, Result};
use crate::text::BertTokenizer;

/// The image columns every kind reads.
pub const IMAGE_COLUMNS: [&str; 6] = [
    "image_id",
    "sample_id",
    "width",
    "height",
    "image_codec",
    "image",
];

/// The sample unit and text of one schema.
#[derive(Debug, Clone)]
pub enum SampleKind {
    /// `image_text.v1`: an image with one of its captions.
    Caption,
    /// `image_qa.v1`: a question with its weighted answers (tokenised by the vocab given).
    Question(Arc<BertTokenizer>),
    /// `image_text.v1`: an image with one of its raw captions as a decoder target.
    CaptionTarget(Arc<BertTokenizer>),
    /// `image_text.v1`, one sample per caption (retrieval fine-tuning, as `re_train_dataset`):
    /// `[CLS]` + the caption's stored tokens (the pipeline's `pre_caption` 30 words).
    CaptionEach,
    /// `image_grounding.v1`: one referring expression with its object's box (grounding
    /// fine-tuning); the image goes through the grounding transforms
    /// ([`super::grounding_transform`]) and the (possibly side-swapped) phrase is tokenised.
    Grounding(Arc<BertTokenizer>),
    /// `image_statement.v1`: a statement about `images` images (1 SNLI-VE, 2 NLVR2) with its label.
    Statement {
        /// The vocabulary (to find `left` / `right`).
        tokenizer: Arc<BertTokenizer>,
        /// Images per statement.
        images: usize,
    },
}

/// The grounding text length (`max_query_len`).
pub const GROUNDING_QUERY_LEN: usize = 20;

/// A sample's text.
#[derive(Debug, Clone, PartialEq)]
pub enum SampleText {
    /// `[CLS]` + caption tokens.
    Caption(Vec<i64>),
    /// `[CLS]` + a caption as a decoder target, and every caption of its image (lower-cased raw
    /// text: the reward references of SCST).
    CaptionTarget {
        /// The target.
        ids: Vec<i64>,
        /// The image's captions.
        references: Vec<String>,
    },
    /// `[CLS]` + statement tokens, and the label.
    Statement {
        /// The statement.
        ids: Vec<i64>,
        /// Its class.
        label: i64,
    },
    /// `[CLS]` + at most 18 phrase pieces + `[SEP]`, the target box and the image's place on the
    /// canvas.
    Grounding {
        /// The phrase.
        ids: Vec<i64>,
        /// (cx, cy, w, h) / S.
        target: [f64; 4],
        /// `[left, top, width, height]` of the image on the canvas.
        region: [u32; 4],
    },
    /// `[CLS]` + question tokens; each answer `[CLS] answer [SEP]` with its weight.
    Question {
        /// The question.
        question: Vec<i64>,
        /// The distinct answers.
        answers: Vec<Vec<i64>>,
        /// Their weights.
        weights: Vec<f64>,
    },
}

impl SampleText {
    /// The encoder input: the caption or the question.
    pub fn input_ids(&self) -> &[i64] {
        match self {
            SampleText::Caption(ids)
            | SampleText::CaptionTarget { ids, .. }
            | SampleText::Grounding { ids, .. }
            | SampleText::Statement { ids, .. } => ids,
            SampleText::Question { question, .. } => question,
        }
    }
}

/// The ids of the words `left` and `right`.
fn side_ids(tokenizer: &BertTokenizer) -> Vec<i32> {
    ["left", "right"]
        .iter()
        .filter_map(|w| tokenizer.token_to_id(w))
        .map(|id| id as i32)
        .collect()
}

fn column<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a Arc<dyn Array>> {
    b.column_by_name(name)
        .ok_or_else(|| Error::format(format!("row group lacks column `{name}`")))
}

impl SampleKind {
    /// Grounding expression `item` of row `row`: the lower-cased phrase and its object's box as
    /// `[x1, y1, x2, y2]` in the pixels of the stored `stored_w`×`stored_h` image. As the reference
    /// reads it: the source `[x, y, w, h]` truncated to integers (`np.array(bbox, dtype=int)`), then
    /// corners, then scaled from the source frame to the stored one.
    pub fn grounding_input(
        b: &RecordBatch,
        row: usize,
        item: usize,
        stored_w: u32,
        stored_h: u32,
    ) -> Result<(String, [f64; 4])> {
        let int = |name: &str| -> Result<f64> {
            Ok(column(b, name)?
                .as_primitive::<Int32Type>()
                .value(row)
                .max(1) as f64)
        };
        let (ow, oh) = (int("orig_width")?, int("orig_height")?);
        let refs = column(b, "sentence_refs")?.as_list::<i32>().value(row);
        let refs = refs.as_primitive::<Int32Type>();
        let sentences = column(b, "sentences")?.as_list::<i32>().value(row);
        let sentences = sentences.as_string::<i32>();
        if item >= sentences.len() || item >= refs.len() {
            return Err(Error::format(format!(
                "row {row} has {} expressions, sample {item} asked",
                sentences.len()
            )));
        }
        let boxes = column(b, "boxes")?.as_list::<i32>().value(row);
        let bx = crate::eval::grounding_task::expression_box(
            boxes.as_list::<i32>(),
            refs,
            item,
            &format!("row {row}"),
        )?;
        let [x, y, w, h] = [bx[0], bx[1], bx[2], bx[3]].map(f64::trunc);
        let (sx, sy) = (stored_w as f64 / ow, stored_h as f64 / oh);
        Ok((
            sentences.value(item).to_lowercase(),
            [x * sx, y * sy, (x + w) * sx, (y + h) * sy],
        ))
    }

    /// The grounding text input (`convert_examples_to_features`): `[CLS]` + the phrase's word
    /// pieces truncated to `max_query_len − 2` (18) + `[SEP]`.
    pub fn grounding_query(tokenizer: &BertTokenizer, phrase: &str) -> Result<Vec<i64>> {
        let toks = tokenizer.encode(phrase)?;
        let keep = toks.len().min(GROUNDING_QUERY_LEN - 2);
        let mut ids = Vec::with_capacity(keep + 2);
        ids.push(super::text::CLS);
        ids.extend(toks[..keep].iter().map(|&t| t as i64));
        ids.push(super::text::SEP);
        Ok(ids)
    }

    /// The row schema this kind reads.
    pub fn schema(&self) -> &'static str {
        match self {
            SampleKind::Caption | SampleKind::CaptionTarget(_) | SampleKind::CaptionEach => {
                "image_text.v1"
            }
            SampleKind::Question(_) => "image_qa.v1",
            SampleKind::Statement { .. } => "image_statement.v1",
            SampleKind::Grounding(_) => "image_grounding.v1",
        }
    }

    /// Images per sample.
    pub fn images(&self) -> usize {
        match self {
            SampleKind::Statement { images, .. } => *images,
            _ => 1,
        }
    }

    /// Exchanges the words `left` and `right` of a statement (NLVR2's swap augmentation).
    pub fn swap_sides(&self, text: &mut SampleText) {
        let (SampleKind::Statement { tokenizer, .. }, SampleText::Statement { ids, .. }) =
            (self, text)
        else {
            return;
        };
        let (Some(l), Some(r)) = (
            tokenizer.token_to_id("left"),
            tokenizer.token_to_id("right"),
        ) else {
            return;
        };
        let (l, r) = (l as i64, r as i64);
        for t in ids.iter_mut() {
            if *t == l {
                *t = r;
            } else if *t == r {
                *t = l;
            }
        }
    }

    /// The columns a row group is read with.
    pub fn columns(&self) -> Vec<&'static str> {
        let mut c = IMAGE_COLUMNS.to_vec();
        match self {
            SampleKind::Caption | SampleKind::CaptionEach => c.push("caption_tokens"),
            SampleKind::Question(_) => c.extend(["question_tokens", "answers", "answer_weights"]),
            SampleKind::CaptionTarget(_) => c.push("captions"),
            SampleKind::Grounding(_) => c.extend([
                "orig_width",
                "orig_height",
                "boxes",
                "sentence_ids",
                "sentence_refs",
                "sentences",
            ]),
            SampleKind::Statement { images, .. } => {
                c.extend(["num_images", "statement_tokens", "labels"]);
                if *images == 2 {
                    c.extend([
                        "right_width",
                        "right_height",
                        "right_image_codec",
                        "right_image",
                    ]);
                }
            }
        }
        c
    }

    /// The list column whose length is a row's sample count (`None`: one sample per row).
    pub fn items_column(&self) -> Option<&'static str> {
        match self {
            SampleKind::Caption => None,
            SampleKind::Question(_) => Some("question_ids"),
            SampleKind::CaptionTarget(_) => Some("captions"),
            SampleKind::CaptionEach => Some("caption_tokens"),
            SampleKind::Grounding(_) => Some("sentence_ids"),
            SampleKind::Statement { .. } => Some("statement_ids"),
        }
    }

    /// Whether the sample's text names a side (`left` / `right` as a word of the question or of
    /// an answer): the training transform must not flip its image. Captions keep the reference's
    /// unconditional flip.
    pub fn names_a_side(&self, b: &RecordBatch, row: usize, item: usize) -> Result<bool> {
        let names_side = |t: &str| {
            t.split(|c: char| !c.is_alphanumeric())
                .any(|w| w.eq_ignore_ascii_case("left") || w.eq_ignore_ascii_case("right"))
        };
        let tokenizer = match self {
            // the grounding transform flips and swaps the text itself
            SampleKind::Caption | SampleKind::CaptionEach | SampleKind::Grounding(_) => {
                return Ok(false);
            }
            SampleKind::Statement { tokenizer, .. } => {
                let sides = side_ids(tokenizer);
                let st = column(b, "statement_tokens")?.as_list::<i32>().value(row);
                let st = st.as_list::<i32>();
                return Ok(item < st.len()
                    && st
                        .value(item)
                        .as_primitive::<Int32Type>()
                        .values()
                        .iter()
                        .any(|t| sides.contains(t)));
            }
            SampleKind::CaptionTarget(_) => {
                let caps = column(b, "captions")?.as_list::<i32>().value(row);
                let caps = caps.as_string::<i32>();
                return Ok(item < caps.len() && names_side(caps.value(item)));
            }
            SampleKind::Question(tokenizer) => tokenizer,
        };
        let sides = side_ids(tokenizer);
        let qs = column(b, "question_tokens")?.as_list::<i32>().value(row);
        let qs = qs.as_list::<i32>();
        if item < qs.len() {
            let q = qs.value(item);
            if q.as_primitive::<Int32Type>()
                .values()
                .iter()
                .any(|t| sides.contains(t))
            {
                return Ok(true);
            }
        }
        let answers = column(b, "answers")?.as_list::<i32>().value(row);
        let answers = answers.as_list::<i32>();
        if item < answers.len() {
            let a = answers.value(item);
            return Ok(a.as_string::<i32>().iter().flatten().any(names_side));
        }
        Ok(false)
    }

    /// The text of sample `item` of row `row` (`max_tokens` includes `[CLS]`); `rng` draws the
    /// caption.
    pub fn text(
        &self,
        b: &RecordBatch,
        row: usize,
        item: usize,
        max_tokens: usize,
        rng: &mut LoaderRng,
    ) -> Result<SampleText> {
        match self {
            SampleKind::Caption => {
                let caps = column(b, "caption_tokens")?.as_list::<i32>().value(row);
                let caps = caps.as_list::<i32>();
                if caps.is_empty() {
                    return Ok(SampleText::Caption(with_cls(&[], max_tokens)));
                }
                let pick = rng.below(caps.len() as u64) as usize;
                let toks = caps.value(pick);
                let toks = toks.as_primitive::<Int32Type>().values();
                Ok(SampleText::Caption(with_cls(toks, max_tokens)))
            }
            SampleKind::CaptionEach => {
                let caps = column(b, "caption_tokens")?.as_list::<i32>().value(row);
                let caps = caps.as_list::<i32>();
                if item >= caps.len() {
                    return Err(Error::format(format!(
                        "row {row} has {} captions, sample {item} asked",
                        caps.len()
                    )));
                }
                let toks = caps.value(item);
                Ok(SampleText::Caption(with_cls(
                    toks.as_primitive::<Int32Type>().values(),
                    max_tokens,
                )))
            }
            SampleKind::Statement { images, .. } => {
                let n = column(b, "num_images")?
                    .as_primitive::<Int32Type>()
                    .value(row);
                if n as usize != *images {
                    return Err(Error::input(format!(
                        "row {row} holds {n} image(s) per statement; this task takes {images} \
                         (SNLI-VE: 1, NLVR2: 2)"
                    )));
                }
                let st = column(b, "statement_tokens")?.as_list::<i32>().value(row);
                let st = st.as_list::<i32>();
                let labels = column(b, "labels")?.as_list::<i32>().value(row);
                let labels = labels.as_primitive::<Int32Type>();
                if item >= st.len() || item >= labels.len() {
                    return Err(Error::format(format!(
                        "row {row} has {} statements, sample {item} asked",
                        st.len()
                    )));
                }
                let toks = st.value(item);
                Ok(SampleText::Statement {
                    ids: with_cls(toks.as_primitive::<Int32Type>().values(), max_tokens),
                    label: labels.value(item) as i64,
                })
            }
            SampleKind::Grounding(_) => Err(Error::internal(
                "grounding samples are built with their image (grounding_input)",
            )),
            SampleKind::CaptionTarget(tokenizer) => {
                let caps = column(b, "captions")?.as_list::<i32>().value(row);
                let caps = caps.as_string::<i32>();
                if item >= caps.len() {
                    return Err(Error::format(format!(
                        "row {row} has {} captions, sample {item} asked",
                        caps.len()
                    )));
                }
                let text = format!("{}[SEP]", caps.value(item).to_lowercase());
                let toks = tokenizer.encode(&text)?;
                Ok(SampleText::CaptionTarget {
                    ids: with_cls(&toks, max_tokens),
                    references: caps.iter().flatten().map(str::to_lowercase).collect(),
                })
            }
            SampleKind::Question(tokenizer) => {
                let qs = column(b, "question_tokens")?.as_list::<i32>().value(row);
                let qs = qs.as_list::<i32>();
                if item >= qs.len() {
                    return Err(Error::format(format!(
                        "row {row} has {} questions, sample {item} asked",
                        qs.len()
                    )));
                }
                let q = qs.value(item);
                let question = with_cls(q.as_primitive::<Int32Type>().values(), max_tokens);
                let answers = column(b, "answers")?.as_list::<i32>().value(row);
                let answers = answers.as_list::<i32>().value(item);
                let answers = answers.as_string::<i32>();
                let weights = column(b, "answer_weights")?.as_list::<i32>().value(row);
                let weights = weights.as_list::<i32>().value(item);
                let weights = weights.as_primitive::<Float64Type>().values().to_vec();
                if answers.len() != weights.len() {
                    return Err(Error::format(format!(
                        "row {row} question {item}: {} answers but {} weights",
                        answers.len(),
                        weights.len()
                    )));
                }
                let mut ids = Vec::with_capacity(answers.len());
                for a in answers.iter() {
                    let toks = tokenizer.encode(&format!("{}[SEP]", a.unwrap_or_default()))?;
                    ids.push(with_cls(&toks, usize::MAX));
                }
                Ok(SampleText::Question {
                    question,
                    answers: ids,
                    weights,
                })
            }
        }
    }
}
