//! The files `mplug eval` writes, in the official formats: results the official tools load
//! (EvalAI VQA `[{question_id, answer}]`, COCO `[{image_id, caption}]`) and the split's ground truth
//! beside them (VQA v2 annotation + question files, a COCO captions file), so the same numbers can
//! be recomputed with the official code or `mplug score`.

use serde::Serialize;
use serde_json::{Value, json};

use super::caption_task::CaptionPrediction;
use super::vqa_task::QaPrediction;

/// An id as the official files write it: a JSON number when it is an integer, else the string.
pub fn id_value(id: &str) -> Value {
    match id.parse::<i64>() {
        Ok(n) if n.to_string() == id => json!(n),
        _ => json!(id),
    }
}

/// One EvalAI VQA record.
#[derive(Debug, Serialize)]
pub struct VqaResult {
    /// The question.
    pub question_id: Value,
    /// The generated answer.
    pub answer: String,
}

/// One COCO caption result.
#[derive(Debug, Serialize)]
pub struct CaptionResult {
    /// The image.
    pub image_id: Value,
    /// The generated caption.
    pub caption: String,
}

/// Generated token ids of one item (with `--save-tokens`).
#[derive(Debug, Serialize)]
pub struct GeneratedTokens {
    /// Question or image id.
    pub id: String,
    /// The top beam, start token and EOS included.
    pub tokens: Vec<i64>,
}

/// The EvalAI results file.
pub fn vqa_results(preds: &[QaPrediction]) -> Vec<VqaResult> {
    preds
        .iter()
        .map(|p| VqaResult {
            question_id: id_value(&p.item.question_id),
            answer: p.answer.clone(),
        })
        .collect()
}

/// The split's questions and answers as VQA v2 `questions` and `annotations` files (the ten human
/// answers as stored, `answer_id` 1..n).
pub fn vqa_ground_truth(preds: &[QaPrediction]) -> (Value, Value) {
    let questions: Vec<Value> = preds
        .iter()
        .map(|p| {
            json!({"image_id": id_value(&p.item.image_id), "question": p.item.question,
                   "question_id": id_value(&p.item.question_id)})
        })
        .collect();
    let annotations: Vec<Value> = preds
        .iter()
        .filter_map(|p| {
            let t = p.item.truth.as_ref()?;
            let answers: Vec<Value> = t
                .answers
                .iter()
                .enumerate()
                .map(|(i, a)| json!({"answer": a, "answer_confidence": "yes", "answer_id": i + 1}))
                .collect();
            Some(json!({
                "answer_type": t.answer_type, "answers": answers,
                "image_id": id_value(&p.item.image_id),
                "multiple_choice_answer": p.item.multiple_choice_answer,
                "question_id": id_value(&p.item.question_id), "question_type": t.question_type,
            }))
        })
        .collect();
    // the header keys the VQA API copies (`loadRes` reads task_type, data_type, data_subtype)
    let header = |key: &str, list: Vec<Value>| {
        json!({"info": {"description": "written by mplug eval from the evaluated split"},
               "task_type": "Open-Ended", "data_type": "mscoco", "data_subtype": "",
               "license": {}, key: list})
    };
    (
        header("questions", questions),
        header("annotations", annotations),
    )
}

/// The COCO results file.
pub fn caption_results(preds: &[CaptionPrediction]) -> Vec<CaptionResult> {
    preds
        .iter()
        .map(|p| CaptionResult {
            image_id: id_value(&p.item.image_id),
            caption: p.caption.clone(),
        })
        .collect()
}

/// The split's reference captions as a COCO captions file (`images`, `annotations` numbered from 1).
pub fn coco_references(preds: &[CaptionPrediction]) -> Value {
    let images: Vec<Value> = preds
        .iter()
        .map(|p| json!({"id": id_value(&p.item.image_id)}))
        .collect();
    let mut annotations = Vec::new();
    for p in preds {
        for c in &p.item.references {
            annotations.push(json!({"caption": c, "id": annotations.len() + 1,
                                    "image_id": id_value(&p.item.image_id)}));
        }
    }
    json!({"info": {"description": "written by mplug eval from the evaluated split"},
           "images": images, "annotations": annotations, "licenses": [], "type": "captions"})
}
