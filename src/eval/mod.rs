//! Evaluation: the official metrics, in Rust, equal to the tools papers report with.
//!
//! Flow position: the last step, after `model`. One file per metric (`vqa_accuracy`, `bleu`,
//! `rouge_l`, `cider_d`, `meteor` (the official jar), `retrieval` (R@k, MdR), the caption tokeniser `ptb_tokenizer`) and per scored task (`vqa`,
//! `caption`: their file formats, id checks and reports). `mplug score TASK` runs them on any results
//! file, ours or one written by the original code.

pub mod answer_ranking;
pub mod batches;
pub mod bleu;
pub mod caption;
pub mod caption_task;
pub mod cider_d;
pub mod grounding;
pub mod grounding_task;
pub mod meteor;
pub mod ngrams;
pub mod pretrain_heldout;
pub mod ptb_tokenizer;
pub mod result_files;
pub mod results;
pub mod retrieval;
pub mod retrieval_files;
pub mod retrieval_task;
pub mod rouge_l;
pub mod settings;
pub mod split;
pub mod statement_task;
pub mod task_model;
pub mod video_caption_task;
pub mod video_qa_task;
pub mod vqa;
pub mod vqa_accuracy;
pub mod vqa_task;
