//! `image_qa.v1` rows: an image with its questions, tokenised, and the answers weighted as the
//! reference's `vqa_dataset` does.

use super::SampleOutcome;
use super::image_task::ImageTask;
use super::text::tokenize_texts;
use crate::error::Result;
use crate::shards::SchemaSpec;
use crate::shards::image_columns::StoredImage;
use crate::shards::manifest::{RejectRecord, RejectStage, RejectUnit, Totals};
use crate::shards::qa_rows::ImageQaRow;
use crate::sources::vqa::QaSample;
use crate::text::{BertTokenizer, TextNormalization};

/// Distinct answers (first-appearance order) and their weights, as `dataset/vqa_dataset.py`:
/// `vqa`: `1/len(answers)` added once per occurrence (so 3 of 10 is 0.30000000000000004, exactly the
/// reference's float, not 3/10); `vg` (and `gqa`): the answer with weight 0.5.
pub fn answer_weights(dataset: &str, answers: &[String]) -> (Vec<String>, Vec<f64>) {
    if dataset != "vqa" {
        return match answers.first() {
            Some(a) => (vec![a.clone()], vec![0.5]),
            None => (Vec::new(), Vec::new()),
        };
    }
    let step = 1.0 / answers.len() as f64;
    let mut distinct: Vec<String> = Vec::new();
    let mut weights: Vec<f64> = Vec::new();
    for a in answers {
        match distinct.iter().position(|d| d == a) {
            Some(i) => weights[i] += step,
            None => {
                distinct.push(a.clone());
                weights.push(step);
            }
        }
    }
    (distinct, weights)
}

/// The QA task.
pub struct QaTask<'a> {
    /// Tokenizer for the questions.
    pub tokenizer: &'a BertTokenizer,
    /// Question normalisation (the reference: none; the tokenizer lower-cases).
    pub normalize: TextNormalization,
}

impl ImageTask for QaTask<'_> {
    type Sample = QaSample;
    type Row = ImageQaRow;

    fn schema(&self) -> SchemaSpec {
        SchemaSpec::image_qa_v1()
    }

    fn identity(&self, s: &QaSample) -> (String, String) {
        (s.image_id.clone(), s.source_path.clone())
    }

    fn image_paths(&self, s: &QaSample) -> Vec<(usize, String)> {
        vec![(s.root, s.source_path.clone())]
    }

    fn count(&self, row: &ImageQaRow, totals: &mut Totals) {
        totals.samples_written += 1;
        totals.questions_written += row.questions.len() as u64;
    }

    fn build(
        &self,
        s: QaSample,
        mut images: Vec<StoredImage>,
    ) -> Result<SampleOutcome<ImageQaRow>> {
        let questions: Vec<String> = s.questions.iter().map(|q| q.question.clone()).collect();
        let t = tokenize_texts(
            &questions,
            self.normalize,
            0,
            self.tokenizer,
            &s.source_path,
            &s.image_id,
            RejectUnit::Question,
        )?;
        let mut rejects = t.rejects;
        if t.kept.is_empty() {
            rejects.push(RejectRecord {
                source: s.source_path.clone(),
                sample_id: s.image_id.clone(),
                stage: RejectStage::Annotation,
                unit: RejectUnit::Image,
                reason: "image has no valid question".to_string(),
            });
            return Ok(SampleOutcome {
                row: None,
                rejects,
                files: Vec::new(),
            });
        }
        let Some(image) = images.pop() else {
            return Err(crate::Error::internal("QA sample without its image"));
        };
        let mut row = ImageQaRow {
            image_id: s.image_id,
            split: s.split,
            dataset: s.dataset.clone(),
            image,
            question_ids: Vec::new(),
            questions: Vec::new(),
            question_tokens: t.tokens,
            answers: Vec::new(),
            answer_weights: Vec::new(),
            answer_counts: Vec::new(),
            question_types: Vec::new(),
            answer_types: Vec::new(),
            multiple_choice_answers: Vec::new(),
        };
        for &i in &t.kept {
            let q = &s.questions[i];
            let (answers, weights) = answer_weights(&s.dataset, &q.answers);
            row.question_ids.push(q.question_id.clone());
            row.questions.push(q.question.clone());
            row.answers.push(answers);
            row.answer_weights.push(weights);
            row.answer_counts.push(q.answers.len() as i32);
            row.question_types.push(q.question_type.clone());
            row.answer_types.push(q.answer_type.clone());
            row.multiple_choice_answers
                .push(q.multiple_choice_answer.clone());
        }
        Ok(SampleOutcome {
            row: Some(row),
            rejects,
            files: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn weights_follow_the_reference_formula() {
        // 10 human answers: net x6, netting x3, mesh x1 → 0.6, 0.3, 0.1 in first-appearance order.
        let answers = s(&[
            "net", "netting", "net", "mesh", "net", "net", "netting", "net", "netting", "net",
        ]);
        let (a, w) = answer_weights("vqa", &answers);
        assert_eq!(a, s(&["net", "netting", "mesh"]));
        // Python: 0.1 added six times is 0.6, three times 0.30000000000000004.
        assert_eq!(w, vec![0.6, 0.30000000000000004, 0.1]);
        // Three answers of one list → 1/3 each (the reference divides by len(list), not 10).
        let (_, w) = answer_weights("vqa", &s(&["a", "b", "c"]));
        assert_eq!(w, vec![1.0 / 3.0; 3]);
        assert_eq!(
            answer_weights("vg", &s(&["Green."])),
            (s(&["Green."]), vec![0.5])
        );
        assert_eq!(answer_weights("vqa", &[]), (vec![], vec![]));
    }
}
