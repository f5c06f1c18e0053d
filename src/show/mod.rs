//! `mplug show`: contact sheets of a dataset — stored images (or a clip's frames) with their texts and
//! boxes — and of predictions beside ground truth (`--results`: a VQA or caption results file, each
//! tile with its per-sample metric, worst first on request).
//!
//! Flow position: reads finished datasets through `query` (the same SQL session as `mplug sql`) and
//! results files through `eval`; draws with plotters into an RGB buffer, as `mplug plot`.

pub mod draw;
pub mod select;
pub mod tiles;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float64Type, Int32Type};

use crate::error::{Error, Result};
use crate::eval::results::{id_list_preview, read_json};
use crate::eval::vqa_accuracy::{VqaEvalMode, question_accuracy};
use crate::loader::rng::{LoaderRng, Purpose};
use draw::{SheetLayout, render};
use select::ShowSource;
use tiles::{Prediction, tile_content};

/// What to show.
#[derive(Debug, Clone)]
pub struct ShowOptions {
    /// The dataset directory.
    pub data: PathBuf,
    /// Only this split.
    pub split: Option<String>,
    /// A SQL predicate over the dataset's columns.
    pub where_: Option<String>,
    /// A sample list (`mplug select`): only its samples of this dataset.
    pub samples: Option<PathBuf>,
    /// Tiles at most.
    pub n: usize,
    /// Draw the samples at random with this seed (else the first ones in stored order).
    pub seed: Option<u64>,
    /// A results file to show beside the ground truth.
    pub results: Option<PathBuf>,
    /// Results mode: lowest per-sample metric first.
    pub worst: bool,
    /// The PNG to write (its layout goes to the same name with `.json`).
    pub out: PathBuf,
}

/// One tile to draw: the row's key, the item in it, a prediction.
struct Pick {
    key: String,
    item: Option<usize>,
    prediction: Option<Prediction>,
}

/// Writes the sheet and its layout; returns the layout.
pub fn show(opts: &ShowOptions) -> Result<SheetLayout> {
    if opts.n == 0 {
        return Err(Error::input("--n must be at least 1"));
    }
    let source = ShowSource::open(
        &opts.data,
        opts.split.as_deref(),
        opts.where_.as_deref(),
        opts.samples.as_deref(),
    )?;
    let schema = source.entry.manifest.schema.clone();
    let mut picks = match &opts.results {
        None => {
            let light = source.light_rows(&[])?;
            let keys = light.column(0).as_string::<i32>();
            (0..keys.len())
                .map(|i| Pick {
                    key: keys.value(i).to_string(),
                    item: None,
                    prediction: None,
                })
                .collect::<Vec<_>>()
        }
        Some(path) => result_picks(&source, &schema, path)?,
    };
    if opts.worst {
        picks.sort_by(|a, b| {
            let m = |p: &Pick| p.prediction.as_ref().map_or(f64::INFINITY, |x| x.metric);
            m(a).total_cmp(&m(b))
        });
    }
    if let Some(seed) = opts.seed {
        LoaderRng::new(seed, Purpose::Show, 0, 0).shuffle(&mut picks);
    }
    picks.truncate(opts.n);
    let mut keys: Vec<String> = picks.iter().map(|p| p.key.clone()).collect();
    keys.dedup();
    let rows = source.rows(&keys)?;
    let key_col = select::key_column(&schema)?;
    let col = rows
        .column_by_name(key_col)
        .map(|c| c.as_string::<i32>())
        .ok_or_else(|| Error::format(format!("no `{key_col}` column")))?;
    let at: HashMap<&str, usize> = (0..col.len()).map(|i| (col.value(i), i)).collect();
    let mut tiles = Vec::new();
    for p in &picks {
        let r = at[p.key.as_str()];
        let content = tile_content(&schema, &rows, r, p.item, p.prediction.as_ref())?;
        tiles.push((p.key.clone(), p.item, content));
    }
    let mut title = format!("{} ({})", source.entry.manifest.name, schema);
    if let Some(s) = &opts.split {
        title.push_str(&format!(" · split {s}"));
    }
    if let Some(w) = &opts.where_ {
        title.push_str(&format!(" · where {w}"));
    }
    if let Some(r) = &opts.results {
        title.push_str(&format!(" · results {}", r.display()));
    }
    title.push_str(&format!(" · {} shown", tiles.len()));
    let layout = render(&tiles, &title, &opts.out)?;
    let mut json = serde_json::to_vec_pretty(&layout)
        .map_err(|e| Error::internal_caused("sheet layout", e))?;
    json.push(b'\n');
    crate::shards::commit::write_atomic(&opts.out.with_extension("json"), &json)?;
    Ok(layout)
}

/// The tiles of a results file: one per result, with the metric of each.
fn result_picks(source: &ShowSource, schema: &str, path: &Path) -> Result<Vec<Pick>> {
    let root = read_json(path)?;
    let first = root.as_array().and_then(|l| l.first());
    let is = |a: &str, b: &str| first.is_some_and(|r| r.get(a).is_some() && r.get(b).is_some());
    let (kind, want) = if is("question_id", "answer") {
        ("vqa", "image_qa.v1")
    } else if is("image_id", "caption") {
        ("caption", "image_text.v1")
    } else if is("sent_id", "pred_box") {
        ("grounding", "image_grounding.v1")
    } else {
        return Err(Error::input(format!(
            "`{}` is neither a VQA results file [{{question_id, answer}}], a caption results \
             file [{{image_id, caption}}] nor grounding results [{{sent_id, pred_box}}]",
            path.display()
        )));
    };
    if schema != want {
        return Err(Error::input_with_hint(
            format!(
                "`{}` holds {kind} results but dataset `{}` is {schema}",
                path.display(),
                source.entry.manifest.name
            ),
            format!("pass the {want} dataset the results were made for"),
        ));
    }
    let unknown = |ids: Vec<&str>| {
        Error::input_with_hint(
            format!(
                "`{}` names {} id(s) that are not in dataset `{}` (with this selection): {}",
                path.display(),
                ids.len(),
                source.entry.manifest.name,
                id_list_preview(&ids)
            ),
            "pass the dataset (and --split) the results were made for",
        )
    };
    if kind == "grounding" {
        return grounding_picks(source, &root, path, &unknown);
    }
    if kind == "vqa" {
        let results = crate::eval::vqa::read_results(path)?;
        let light =
            source.light_rows(&["question_ids", "answers", "answer_weights", "answer_counts"])?;
        let keys = light.column(0).as_string::<i32>();
        let qids = light.column(1).as_list::<i32>();
        let answers = light.column(2).as_list::<i32>();
        let weights = light.column(3).as_list::<i32>();
        let counts = light.column(4).as_list::<i32>();
        let mut at: HashMap<String, (usize, usize)> = HashMap::new();
        for r in 0..light.num_rows() {
            let q = qids.value(r);
            let q = q.as_string::<i32>();
            for k in 0..q.len() {
                at.insert(q.value(k).to_string(), (r, k));
            }
        }
        let missing: Vec<&str> = results
            .iter()
            .map(|(q, _)| q.as_str())
            .filter(|q| !at.contains_key(*q))
            .collect();
        if !missing.is_empty() {
            return Err(unknown(missing));
        }
        results
            .iter()
            .map(|(qid, answer)| {
                let (r, k) = at[qid];
                let a = answers.value(r);
                let a = a.as_list::<i32>().value(k);
                let a = a.as_string::<i32>();
                let w = weights.value(r);
                let w = w.as_list::<i32>().value(k);
                let w = w.as_primitive::<Float64Type>();
                let n = counts.value(r).as_primitive::<Int32Type>().value(k).max(0) as f64;
                let mut human = Vec::new();
                for i in 0..a.len() {
                    let times = (w.value(i) * n).round() as usize;
                    human.extend(std::iter::repeat_n(a.value(i).to_string(), times));
                }
                Ok(Pick {
                    key: keys.value(r).to_string(),
                    item: Some(k),
                    prediction: Some(Prediction {
                        text: answer.clone(),
                        metric_name: "acc",
                        metric: question_accuracy(VqaEvalMode::Official, answer, &human),
                        source_box: None,
                    }),
                })
            })
            .collect()
    } else {
        let results = crate::eval::caption::read_results(path)?;
        let light = source.light_rows(&["captions"])?;
        let keys = light.column(0).as_string::<i32>();
        let caps = light.column(1).as_list::<i32>();
        let mut refs: indexmap::IndexMap<String, Vec<String>> = indexmap::IndexMap::new();
        for r in 0..light.num_rows() {
            let c = caps.value(r);
            let c = c.as_string::<i32>();
            refs.insert(
                keys.value(r).to_string(),
                (0..c.len()).map(|i| c.value(i).to_string()).collect(),
            );
        }
        let missing: Vec<&str> = results
            .iter()
            .map(|(id, _)| id.as_str())
            .filter(|id| !refs.contains_key(*id))
            .collect();
        if !missing.is_empty() {
            return Err(unknown(missing));
        }
        let scored: indexmap::IndexMap<String, Vec<String>> = results
            .iter()
            .map(|(id, _)| (id.clone(), refs[id.as_str()].clone()))
            .collect();
        let (report, _) = crate::eval::caption::score(&scored, &results, None)?;
        Ok(results
            .iter()
            .map(|(id, caption)| Pick {
                key: id.clone(),
                item: None,
                prediction: Some(Prediction {
                    text: caption.clone(),
                    metric_name: "CIDEr",
                    metric: report
                        .per_image
                        .get(id)
                        .and_then(|m| m.get("CIDEr"))
                        .copied()
                        .unwrap_or(0.0),
                    source_box: None,
                }),
            })
            .collect())
    }
}

/// Grounding results (`mplug eval grounding`): each expression's predicted box beside the ground
/// truth, with their IoU in source pixels (equal to the IoU in the padded frame: the two differ by a
/// scale and a shift).
fn grounding_picks(
    source: &ShowSource,
    root: &serde_json::Value,
    path: &Path,
    unknown: &dyn Fn(Vec<&str>) -> Error,
) -> Result<Vec<Pick>> {
    let light = source.light_rows(&["sentence_ids", "sentence_refs", "boxes"])?;
    let keys = light.column(0).as_string::<i32>();
    let sent_ids = light.column(1).as_list::<i32>();
    let refs = light.column(2).as_list::<i32>();
    let boxes = light.column(3).as_list::<i32>();
    let mut at: HashMap<i64, (usize, usize)> = HashMap::new();
    for r in 0..light.num_rows() {
        let s = sent_ids.value(r);
        let s = s.as_primitive::<arrow::datatypes::Int64Type>();
        for k in 0..s.len() {
            at.insert(s.value(k), (r, k));
        }
    }
    let list = root.as_array().map(Vec::as_slice).unwrap_or_default();
    let mut parsed = Vec::with_capacity(list.len());
    for (i, rec) in list.iter().enumerate() {
        let sent = rec.get("sent_id").and_then(serde_json::Value::as_i64);
        let pred: Option<Vec<f64>> = rec
            .get("pred_box")
            .and_then(|b| serde_json::from_value(b.clone()).ok());
        match (sent, pred) {
            (Some(s), Some(b)) if b.len() == 4 => parsed.push((s, [b[0], b[1], b[2], b[3]])),
            _ => {
                return Err(Error::input(format!(
                    "`{}`: record {i} needs an integer `sent_id` and a 4-number `pred_box`",
                    path.display()
                )));
            }
        }
    }
    let ids: Vec<String> = parsed.iter().map(|(s, _)| s.to_string()).collect();
    let missing: Vec<&str> = parsed
        .iter()
        .zip(&ids)
        .filter(|((s, _), _)| !at.contains_key(s))
        .map(|(_, id)| id.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(unknown(missing));
    }
    let corners = |b: [f64; 4]| [b[0], b[1], b[0] + b[2], b[1] + b[3]];
    Ok(parsed
        .iter()
        .map(|(s, pred)| {
            let (r, k) = at[s];
            let o = refs.value(r).as_primitive::<Int32Type>().value(k) as usize;
            let gt = boxes.value(r);
            let gt = gt.as_list::<i32>().value(o);
            let gt = gt.as_primitive::<Float64Type>().values().to_vec();
            let iou = if gt.len() == 4 {
                crate::eval::grounding::box_iou(
                    corners(*pred),
                    corners([gt[0], gt[1], gt[2], gt[3]]),
                )
            } else {
                0.0
            };
            Pick {
                key: keys.value(r).to_string(),
                item: Some(k),
                prediction: Some(Prediction {
                    text: format!(
                        "box {:.0},{:.0} {:.0}×{:.0}",
                        pred[0], pred[1], pred[2], pred[3]
                    ),
                    metric_name: "IoU",
                    metric: iou,
                    source_box: Some(*pred),
                }),
            }
        })
        .collect())
}
