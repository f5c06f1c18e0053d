//! What one tile of a contact sheet shows, per row schema: the stored image(s) or frames, boxes in
//! stored-pixel coordinates, and text lines (ids, captions, questions with weighted answers,
//! expressions, statements with labels, predictions beside ground truth).

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, Int32Type};

use crate::error::{Error, Result};
use crate::stages::{RgbImage, decode_stored};

/// Box outline colours, one per object (none is a shapes-world colour).
pub const BOX_COLOURS: [[u8; 3]; 4] =
    [[230, 0, 230], [0, 150, 230], [110, 190, 0], [230, 110, 150]];

/// A box to draw on image `image` of a tile, `[x, y, w, h]` in stored pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct DrawnBox {
    /// Which of the tile's images.
    pub image: usize,
    /// `[x, y, w, h]`.
    pub rect: [f64; 4],
    /// Outline colour.
    pub colour: [u8; 3],
}

/// A line of text, optionally coloured like a box.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// The text.
    pub text: String,
    /// Its colour (black when `None`).
    pub colour: Option<[u8; 3]>,
}

fn plain(text: impl Into<String>) -> Line {
    Line {
        text: text.into(),
        colour: None,
    }
}

/// A prediction shown beside the ground truth, with its per-sample metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// What the model said.
    pub text: String,
    /// e.g. `acc` or `CIDEr`.
    pub metric_name: &'static str,
    /// Its value for this sample.
    pub metric: f64,
    /// A predicted box `[x, y, w, h]` in source pixels (grounding).
    pub source_box: Option<[f64; 4]>,
}

/// Everything a tile draws.
#[derive(Debug, Clone)]
pub struct TileContent {
    /// Images (1; 2 for NLVR2; the frames of a clip).
    pub images: Vec<RgbImage>,
    /// Boxes on them.
    pub boxes: Vec<DrawnBox>,
    /// Text under them.
    pub lines: Vec<Line>,
}

struct Row<'a> {
    b: &'a RecordBatch,
    r: usize,
}

impl Row<'_> {
    fn col(&self, name: &str) -> Result<&ArrayRef> {
        self.b
            .column_by_name(name)
            .ok_or_else(|| Error::format(format!("dataset lacks column `{name}`")))
    }
    fn str(&self, name: &str) -> Result<String> {
        let c = self.col(name)?.as_string::<i32>();
        Ok(if c.is_null(self.r) {
            String::new()
        } else {
            c.value(self.r).to_string()
        })
    }
    fn int(&self, name: &str) -> Result<i32> {
        Ok(self.col(name)?.as_primitive::<Int32Type>().value(self.r))
    }
    fn list(&self, name: &str) -> Result<ArrayRef> {
        Ok(self.col(name)?.as_list::<i32>().value(self.r))
    }
    fn strings(&self, name: &str) -> Result<Vec<String>> {
        let l = self.list(name)?;
        let s = l.as_string::<i32>();
        Ok((0..s.len()).map(|i| s.value(i).to_string()).collect())
    }
    fn ints(&self, name: &str) -> Result<Vec<i32>> {
        Ok(self
            .list(name)?
            .as_primitive::<Int32Type>()
            .values()
            .to_vec())
    }
    /// The stored image whose columns carry `prefix` (`""` or `right_`).
    fn image(&self, prefix: &str) -> Result<Option<RgbImage>> {
        let bytes = self.col(&format!("{prefix}image"))?.as_binary::<i32>();
        if bytes.is_null(self.r) {
            return Ok(None);
        }
        let codec = self.str(&format!("{prefix}image_codec"))?;
        let (w, h) = (
            self.int(&format!("{prefix}width"))?,
            self.int(&format!("{prefix}height"))?,
        );
        stored_rgb(bytes.value(self.r), &codec, w as u32, h as u32).map(Some)
    }
}

/// Stored pixels as RGB, the error naming what was decoded.
fn stored_rgb(bytes: &[u8], codec: &str, width: u32, height: u32) -> Result<RgbImage> {
    decode_stored(bytes, codec, width, height).map_err(|e| Error::format_caused("stored image", e))
}

fn weighted(answers: &[String], weights: &[f64]) -> String {
    let parts: Vec<String> = answers
        .iter()
        .zip(weights)
        .map(|(a, w)| format!("{a} {w:.1}"))
        .collect();
    parts.join(", ")
}

/// The content of row `r` of `b` (every column of a `schema` row). `item` picks one question,
/// expression or statement (results mode); `prediction` adds the model's output and metric.
pub fn tile_content(
    schema: &str,
    b: &RecordBatch,
    r: usize,
    item: Option<usize>,
    prediction: Option<&Prediction>,
) -> Result<TileContent> {
    let row = Row { b, r };
    let mut images = Vec::new();
    let mut boxes = Vec::new();
    let mut lines = Vec::new();
    match schema {
        "image_text.v1" => {
            images.extend(row.image("")?);
            lines.push(plain(format!(
                "{} · {}",
                row.str("image_id")?,
                row.str("split")?
            )));
            let caps = row.strings("captions")?;
            let shown = if prediction.is_some() { caps.len() } else { 2 };
            for c in caps.iter().take(shown) {
                lines.push(plain(format!("“{c}”")));
            }
            if caps.len() > shown {
                lines.push(plain(format!("+{} more captions", caps.len() - shown)));
            }
        }
        "image_qa.v1" => {
            images.extend(row.image("")?);
            lines.push(plain(format!(
                "{} · {}",
                row.str("image_id")?,
                row.str("split")?
            )));
            let qs = row.strings("questions")?;
            let answers = row.list("answers")?;
            let answers = answers.as_list::<i32>();
            let weights = row.list("answer_weights")?;
            let weights = weights.as_list::<i32>();
            let picked: Vec<usize> = match item {
                Some(q) => vec![q],
                None => (0..qs.len().min(2)).collect(),
            };
            for q in picked {
                let a = answers.value(q);
                let a = a.as_string::<i32>();
                let a: Vec<String> = (0..a.len()).map(|i| a.value(i).to_string()).collect();
                let w = weights.value(q);
                let w = w.as_primitive::<Float64Type>().values().to_vec();
                lines.push(plain(format!(
                    "Q: {}",
                    qs.get(q).cloned().unwrap_or_default()
                )));
                lines.push(plain(format!("A: {}", weighted(&a, &w))));
            }
            if item.is_none() && qs.len() > 2 {
                lines.push(plain(format!("+{} more questions", qs.len() - 2)));
            }
        }
        "image_grounding.v1" => {
            images.extend(row.image("")?);
            lines.push(plain(format!(
                "{} · {}",
                row.str("image_id")?,
                row.str("split")?
            )));
            let (sx, sy) = (
                row.int("width")? as f64 / row.int("orig_width")?.max(1) as f64,
                row.int("height")? as f64 / row.int("orig_height")?.max(1) as f64,
            );
            let obj_boxes = row.list("boxes")?;
            let obj_boxes = obj_boxes.as_list::<i32>();
            let sentences = row.strings("sentences")?;
            let refs = row.ints("sentence_refs")?;
            let objects: Vec<usize> = match item {
                Some(s) => refs.get(s).map(|&o| vec![o as usize]).unwrap_or_default(),
                None => (0..obj_boxes.len()).collect(),
            };
            if let Some(b) = prediction.and_then(|p| p.source_box) {
                boxes.push(DrawnBox {
                    image: 0,
                    rect: [b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy],
                    colour: PREDICTION_COLOUR,
                });
            }
            for (k, &o) in objects.iter().enumerate() {
                let colour = BOX_COLOURS[k % BOX_COLOURS.len()];
                let bx = obj_boxes.value(o);
                let bx = bx.as_primitive::<Float64Type>().values();
                if bx.len() == 4 {
                    boxes.push(DrawnBox {
                        image: 0,
                        rect: [bx[0] * sx, bx[1] * sy, bx[2] * sx, bx[3] * sy],
                        colour,
                    });
                }
                let exprs: Vec<&String> = sentences
                    .iter()
                    .zip(&refs)
                    .enumerate()
                    .filter(|(s, (_, rf))| **rf as usize == o && item.is_none_or(|i| i == *s))
                    .map(|(_, (t, _))| t)
                    .collect();
                for e in exprs.iter().take(2) {
                    lines.push(Line {
                        text: format!("■ {e}"),
                        colour: Some(colour),
                    });
                }
            }
        }
        "image_statement.v1" => {
            images.extend(row.image("")?);
            images.extend(row.image("right_")?);
            let dataset = row.str("dataset")?;
            lines.push(plain(format!(
                "{} · {}",
                row.str("sample_id")?,
                row.str("split")?
            )));
            let statements = row.strings("statements")?;
            let labels = row.ints("labels")?;
            let premises = row.strings("premises")?;
            let label_name = |l: i32| match (dataset.as_str(), l) {
                ("nlvr2", 1) => "True",
                ("nlvr2", _) => "False",
                (_, 2) => "entailment",
                (_, 1) => "neutral",
                _ => "contradiction",
            };
            let picked: Vec<usize> = match item {
                Some(s) => vec![s],
                None => (0..statements.len().min(3)).collect(),
            };
            for s in picked {
                if let Some(p) = premises.get(s).filter(|p| !p.is_empty()) {
                    lines.push(plain(format!("premise: {p}")));
                }
                let l = labels.get(s).copied().unwrap_or(-1);
                lines.push(plain(format!(
                    "[{}] {}",
                    label_name(l),
                    statements.get(s).cloned().unwrap_or_default()
                )));
            }
        }
        "video_text.v1" => {
            let frames = row.list("frames")?;
            let frames = frames.as_binary::<i32>();
            let codec = row.str("frame_codec")?;
            let (w, h) = (row.int("width")? as u32, row.int("height")? as u32);
            for i in 0..frames.len().min(MAX_FRAMES) {
                images.push(stored_rgb(frames.value(i), &codec, w, h)?);
            }
            lines.push(plain(format!(
                "{} · {} · {} of {} frames",
                row.str("video_id")?,
                row.str("split")?,
                frames.len().min(MAX_FRAMES),
                frames.len()
            )));
            for c in row.strings("captions")?.iter().take(2) {
                lines.push(plain(format!("“{c}”")));
            }
            let (qs, ans) = (row.strings("questions")?, row.strings("answers")?);
            for (q, a) in qs.iter().zip(&ans).take(2) {
                lines.push(plain(format!("Q: {q}  A: {a}")));
            }
        }
        other => {
            return Err(Error::input(format!(
                "`mplug show` does not know row schema `{other}`"
            )));
        }
    }
    if let Some(p) = prediction {
        lines.push(Line {
            text: format!("model: {}  ({} {:.2})", p.text, p.metric_name, p.metric),
            colour: Some(PREDICTION_COLOUR),
        });
    }
    Ok(TileContent {
        images,
        boxes,
        lines,
    })
}

/// Frames of a clip shown at most.
pub const MAX_FRAMES: usize = 8;
/// The colour of prediction lines.
pub const PREDICTION_COLOUR: [u8; 3] = [200, 0, 0];
