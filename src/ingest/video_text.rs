//! Video rows (`video_text.v1`): decode and sample the clip, tokenise captions and questions.

use super::text::tokenize_texts;
use super::{SampleOutcome, SampleProcessor};
use crate::error::Result;
use crate::shards::SchemaSpec;
use crate::shards::manifest::{RejectRecord, RejectStage, RejectUnit, Totals};
use crate::shards::rows::VideoTextRow;
use crate::sources::ImageRoot;
use crate::sources::video::VideoSample;
use crate::stages::PixelCodec;
use crate::text::{BertTokenizer, TextNormalization};
use crate::video::stage::{VideoOptions, VideoStage};

/// Text settings of a video pipeline.
#[derive(Debug, Clone, Copy)]
pub struct VideoTextOptions {
    /// Caption normalisation (`pre_caption`).
    pub caption_normalize: TextNormalization,
    /// Caption word limit.
    pub caption_max_words: usize,
    /// Question normalisation (the reference feeds video-QA questions raw: `none`).
    pub question_normalize: TextNormalization,
}

/// Processes [`VideoSample`]s into [`VideoTextRow`]s.
pub struct VideoTextProcessor<'a> {
    videos: ImageRoot,
    stage: VideoStage,
    text: VideoTextOptions,
    tokenizer: &'a BertTokenizer,
}

impl<'a> VideoTextProcessor<'a> {
    /// A processor reading clips under `videos`.
    pub fn new(
        videos: ImageRoot,
        video: VideoOptions,
        text: VideoTextOptions,
        tokenizer: &'a BertTokenizer,
    ) -> Self {
        VideoTextProcessor {
            videos,
            stage: VideoStage { options: video },
            text,
            tokenizer,
        }
    }
}

impl SampleProcessor for VideoTextProcessor<'_> {
    type Sample = VideoSample;
    type Row = VideoTextRow;

    fn schema(&self) -> SchemaSpec {
        SchemaSpec::video_text_v1()
    }

    fn precompressed_columns(&self) -> &'static [&'static str] {
        if self.stage.options.codec == PixelCodec::Jpeg {
            &["frames"]
        } else {
            &[]
        }
    }

    fn identity(&self, sample: &VideoSample) -> (String, String) {
        (sample.video_id.clone(), sample.source_path.clone())
    }

    fn count(&self, row: &VideoTextRow, totals: &mut Totals) {
        totals.samples_written += 1;
        totals.texts_written += row.captions.len() as u64;
        totals.questions_written += row.questions.len() as u64;
    }

    fn process(&self, sample: VideoSample) -> Result<SampleOutcome<VideoTextRow>> {
        let reject = |stage: RejectStage, reason: String| {
            SampleOutcome::rejected(
                &sample.source_path,
                &sample.video_id,
                stage,
                RejectUnit::Clip,
                reason,
            )
        };
        let path = match self.videos.resolve(&sample.source_path) {
            Ok(p) => p,
            Err(reason) => return Ok(reject(RejectStage::Path, reason.replace("image", "video"))),
        };
        let clip = match self.stage.process(&path)? {
            Ok(c) => c,
            Err(e) => return Ok(reject(RejectStage::Decode, e.to_string())),
        };
        let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let file = Some((
            sample.source_path.clone(),
            bytes,
            clip.source_blake3.clone(),
        ));
        let (src, id) = (sample.source_path.as_str(), sample.video_id.as_str());
        let caps = tokenize_texts(
            &sample.captions,
            self.text.caption_normalize,
            self.text.caption_max_words,
            self.tokenizer,
            src,
            id,
            RejectUnit::Caption,
        )?;
        let question_texts: Vec<String> = sample.qa.iter().map(|q| q.question.clone()).collect();
        let qs = tokenize_texts(
            &question_texts,
            self.text.question_normalize,
            0,
            self.tokenizer,
            src,
            id,
            RejectUnit::Question,
        )?;
        let mut rejects = caps.rejects;
        rejects.extend(qs.rejects);
        if caps.kept.is_empty() && qs.kept.is_empty() {
            rejects.push(RejectRecord {
                source: sample.source_path.clone(),
                sample_id: sample.video_id.clone(),
                stage: RejectStage::Annotation,
                unit: RejectUnit::Clip,
                reason: "clip has no valid caption or question".to_string(),
            });
            return Ok(SampleOutcome {
                row: None,
                rejects,
                files: file.into_iter().collect(),
            });
        }
        let row = VideoTextRow {
            video_id: sample.video_id.clone(),
            split: sample.split.clone(),
            source_path: sample.source_path.clone(),
            source_blake3: clip.source_blake3,
            pixel_blake3: clip.pixel_blake3,
            video_codec: clip.video_codec,
            duration_s: clip.duration_s,
            fps: clip.fps,
            num_frames_total: clip.num_frames_total as i32,
            variable_frame_rate: clip.variable_frame_rate,
            rotation: clip.rotation as i32,
            orig_width: clip.orig_width,
            orig_height: clip.orig_height,
            width: clip.width,
            height: clip.height,
            frame_codec: self.stage.options.codec.as_str(),
            frame_indices: clip.frame_indices.iter().map(|&i| i as i32).collect(),
            frame_times: clip.frame_times,
            frames: clip.frames,
            captions: caps
                .kept
                .iter()
                .map(|&i| sample.captions[i].clone())
                .collect(),
            caption_tokens: caps.tokens,
            question_ids: qs.kept.iter().map(|&i| sample.qa[i].id).collect(),
            questions: qs
                .kept
                .iter()
                .map(|&i| sample.qa[i].question.clone())
                .collect(),
            question_tokens: qs.tokens,
            answers: qs
                .kept
                .iter()
                .map(|&i| sample.qa[i].answer.clone())
                .collect(),
        };
        Ok(SampleOutcome {
            row: Some(row),
            rejects,
            files: file.into_iter().collect(),
        })
    }
}
