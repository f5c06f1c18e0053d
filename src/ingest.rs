//! An ingest job: source → (image stage ∥ text stage) → ordered `ShardWriter` → manifest.
//!
//! This is where the pieces meet; each piece knows nothing of the others. Output goes to temporary
//! names and `manifest.json` is committed last, so `kill -9` at any moment leaves a directory that is
//! either complete or recognisably incomplete, and a rerun produces the same bytes.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::engine::pipeline::PipelineSpec;
use crate::engine::{EngineOptions, StagePanic, panic_message, progress, run_ordered};
use crate::error::{Error, Result};
use crate::shards::commit::write_atomic;
use crate::shards::manifest::{
    ImageFilesSummary, MANIFEST_FILE, MANIFEST_FORMAT, MANIFEST_VERSION, Manifest, RejectRecord,
    RejectStage, RejectUnit, Sources, ToolInfo, Totals, VocabInfo, json_blake3,
};
use crate::shards::rows::ImageTextRow;
use crate::shards::writer::SHARDS_DIR;
use crate::shards::{SchemaSpec, ShardWriter};
use crate::sources::{CaptionSample, ImageRoot, Source};
use crate::stages::{ImageStage, PixelCodec};
use crate::text::BertTokenizer;

/// Everything an ingest needs, resolved.
pub struct IngestJob<'a> {
    /// Dataset name recorded in the manifest.
    pub name: String,
    /// Output directory.
    pub out_dir: PathBuf,
    /// The resolved pipeline (file + overrides).
    pub pipeline: PipelineSpec,
    /// Source-specific settings recorded in the manifest (e.g. a split override).
    pub source_options: serde_json::Value,
    /// The image root.
    pub images: ImageRoot,
    /// Tokenizer.
    pub tokenizer: &'a BertTokenizer,
    /// Worker threads (does not change the output).
    pub threads: usize,
    /// Fail on the first reject.
    pub strict: bool,
    /// Rebuild even if a complete dataset with the same config exists.
    pub force: bool,
    /// Hide progress bars.
    pub quiet: bool,
}

/// How an ingest ended.
#[derive(Debug)]
pub enum IngestOutcome {
    /// A new dataset was written.
    Written(Manifest),
    /// The directory already held this exact dataset; nothing was done.
    UpToDate(Manifest),
}

/// The pipeline config as recorded (and hashed) in the manifest.
#[derive(Serialize)]
struct RecordedPipeline<'a> {
    pipeline: &'a PipelineSpec,
    source: &'a serde_json::Value,
}

/// What one worker produced for one sample.
struct SampleOutcome {
    row: Option<ImageTextRow>,
    rejects: Vec<RejectRecord>,
    file: Option<(String, u64, String)>, // (path, bytes, blake3) of a file read successfully
}

impl IngestJob<'_> {
    /// Runs the job with `source`.
    pub fn run<S: Source<Sample = CaptionSample>>(&self, source: &S) -> Result<IngestOutcome> {
        let spec = SchemaSpec::image_text_v1();
        if self.pipeline.schema != spec.id() {
            return Err(Error::input(format!(
                "pipeline `{}` asks for schema `{}`, but this source writes `{}`",
                self.pipeline.name,
                self.pipeline.schema,
                spec.id()
            )));
        }
        let parsed = source.read()?;
        let recorded = serde_json::to_value(RecordedPipeline {
            pipeline: &self.pipeline,
            source: &self.source_options,
        })
        .map_err(|e| Error::Internal(e.to_string()))?;
        let pipeline_blake3 = json_blake3(&recorded);
        let vocab = VocabInfo {
            name: "vocab.txt".to_string(),
            entries: self.tokenizer.vocab_size() as u64,
            blake3: self.tokenizer.vocab_blake3().to_string(),
        };

        if let Some(existing) = self.existing_manifest()? {
            let same = existing.pipeline_blake3 == pipeline_blake3
                && existing.sources.annotations == parsed.files
                && existing.vocab.as_ref() == Some(&vocab);
            if same && !self.force {
                return Ok(IngestOutcome::UpToDate(existing));
            }
            if !self.force {
                return Err(Error::input_with_hint(
                    format!(
                        "`{}` already holds a dataset built from other inputs or settings",
                        self.out_dir.display()
                    ),
                    "pass --force to replace it, or choose another --out",
                ));
            }
        }
        if self.strict
            && let Some(first) = parsed.rejects.first()
        {
            return Err(Error::Strict {
                count: parsed.rejects.len(),
                first: first.to_string(),
            });
        }
        self.clear_output()?;

        let stage = ImageStage::new(self.pipeline.image.clone());
        let codec = self.pipeline.image.codec.as_str();
        let mut writer: ShardWriter<ImageTextRow> = ShardWriter::create(
            &self.out_dir,
            &spec,
            self.pipeline.shards.clone(),
            vec![("mplug.pipeline_blake3".to_string(), pipeline_blake3.clone())],
            if self.pipeline.image.codec == PixelCodec::Jpeg {
                &["image"]
            } else {
                &[]
            },
        )?;
        let crate::sources::SourceOutput {
            samples,
            rejects: source_rejects,
            files: annotation_files,
        } = parsed;
        let mut rejects = source_rejects;
        let mut totals = Totals::default();
        let mut files_hasher = blake3::Hasher::new();
        let mut files = ImageFilesSummary::default();
        let bar = progress::items_bar(samples.len() as u64, "ingest", self.quiet);
        let strict = self.strict;

        run_ordered(
            &EngineOptions::with_threads(self.threads),
            samples,
            |sample| self.process(&stage, codec, sample),
            |_, outcome: std::result::Result<SampleOutcome, StagePanic>| {
                bar.inc(1);
                let outcome = match outcome {
                    Ok(outcome) => outcome,
                    // `process` catches its own panics; this is the engine's backstop.
                    Err(StagePanic(msg)) => SampleOutcome {
                        row: None,
                        rejects: vec![RejectRecord {
                            source: String::new(),
                            sample_id: String::new(),
                            stage: RejectStage::Internal,
                            unit: RejectUnit::Image,
                            reason: format!(
                                "panic while processing (a bug, please report it): {msg}"
                            ),
                        }],
                        file: None,
                    },
                };
                if strict && let Some(first) = outcome.rejects.first() {
                    return Err(Error::Strict {
                        count: outcome.rejects.len(),
                        first: first.to_string(),
                    });
                }
                if let Some((path, bytes, hash)) = &outcome.file {
                    files.files += 1;
                    files.bytes += bytes;
                    files_hasher.update(path.as_bytes());
                    files_hasher.update(b"\0");
                    files_hasher.update(hash.as_bytes());
                    files_hasher.update(b"\n");
                }
                rejects.extend(outcome.rejects);
                if let Some(row) = outcome.row {
                    totals.images_written += 1;
                    totals.captions_written += row.captions.len() as u64;
                    writer.push(row)?;
                }
                Ok(())
            },
        )?;
        bar.finish_and_clear();
        let shards = writer.finish()?;
        files.blake3 = files_hasher.finalize().to_hex().to_string();
        totals.images_rejected = rejects
            .iter()
            .filter(|r| r.unit == RejectUnit::Image)
            .count() as u64;
        totals.captions_rejected = rejects
            .iter()
            .filter(|r| r.unit == RejectUnit::Caption)
            .count() as u64;
        totals.images_seen = totals.images_written + totals.images_rejected;
        totals.shards = shards.len() as u64;
        totals.shard_bytes = shards.iter().map(|s| s.bytes).sum();

        let mut manifest = Manifest {
            format: MANIFEST_FORMAT.to_string(),
            format_version: MANIFEST_VERSION,
            name: self.name.clone(),
            schema: spec.id(),
            tool: ToolInfo::current(),
            pipeline: recorded,
            pipeline_blake3,
            vocab: Some(vocab),
            sources: Sources {
                annotations: annotation_files,
                images: files,
            },
            shards,
            rejects,
            totals,
            dataset_blake3: String::new(),
        };
        manifest.dataset_blake3 = manifest.compute_dataset_hash();
        write_atomic(&self.out_dir.join(MANIFEST_FILE), &manifest.to_json_bytes())?;
        Ok(IngestOutcome::Written(manifest))
    }

    fn existing_manifest(&self) -> Result<Option<Manifest>> {
        if !self.out_dir.join(MANIFEST_FILE).exists() {
            return Ok(None);
        }
        match Manifest::read(&self.out_dir) {
            Ok(m) => Ok(Some(m)),
            Err(e) if self.force => {
                eprintln!("warning: replacing unreadable manifest: {e}");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Removes a previous dataset (manifest first, so the directory never looks complete with other
    /// shards) and leftovers of an interrupted run (`part-*.parquet`, `*.tmp`). Other files are kept.
    fn clear_output(&self) -> Result<()> {
        fs_err::create_dir_all(&self.out_dir)?;
        let manifest = self.out_dir.join(MANIFEST_FILE);
        if manifest.exists() {
            fs_err::remove_file(&manifest)?;
        }
        let shards = self.out_dir.join(SHARDS_DIR);
        if shards.is_dir() {
            for entry in fs_err::read_dir(&shards)? {
                let path = entry?.path();
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default();
                if (name.starts_with("part-") && name.ends_with(".parquet"))
                    || name.ends_with(".tmp")
                {
                    fs_err::remove_file(&path)?;
                }
            }
        }
        Ok(())
    }

    /// The per-sample work, run on worker threads. A failure or panic on one sample (a bug: bad inputs
    /// are rejects already) becomes an `internal` reject naming the sample, not the end of the run.
    fn process(
        &self,
        stage: &ImageStage,
        codec: &'static str,
        sample: CaptionSample,
    ) -> SampleOutcome {
        let (sample_id, source) = (sample.image_id.clone(), sample.source_path.clone());
        let reason = match catch_unwind(AssertUnwindSafe(|| {
            self.process_sample(stage, codec, sample)
        })) {
            Ok(Ok(outcome)) => return outcome,
            Ok(Err(e)) => format!("internal error (a bug, please report it): {e}"),
            Err(p) => format!(
                "panic while processing (a bug, please report it): {}",
                panic_message(p.as_ref())
            ),
        };
        let reject = RejectRecord {
            source,
            sample_id,
            stage: RejectStage::Internal,
            unit: RejectUnit::Image,
            reason,
        };
        SampleOutcome {
            row: None,
            rejects: vec![reject],
            file: None,
        }
    }

    fn process_sample(
        &self,
        stage: &ImageStage,
        codec: &'static str,
        sample: CaptionSample,
    ) -> Result<SampleOutcome> {
        let reject = |stage_kind: RejectStage, reason: String| SampleOutcome {
            row: None,
            rejects: vec![RejectRecord {
                source: sample.source_path.clone(),
                sample_id: sample.image_id.clone(),
                stage: stage_kind,
                unit: RejectUnit::Image,
                reason,
            }],
            file: None,
        };
        let path = match self.images.resolve(&sample.source_path) {
            Ok(p) => p,
            Err(reason) => return Ok(reject(RejectStage::Path, reason)),
        };
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                return Ok(reject(
                    RejectStage::Path,
                    format!("cannot read image file: {e}"),
                ));
            }
        };
        let image = match stage.process(&bytes)? {
            Ok(img) => img,
            Err(e) => return Ok(reject(RejectStage::Decode, e.to_string())),
        };
        let file = Some((
            sample.source_path.clone(),
            bytes.len() as u64,
            image.source_blake3.clone(),
        ));
        let mut rejects = Vec::new();
        let mut captions = Vec::new();
        let mut caption_tokens = Vec::new();
        for (i, caption) in sample.captions.iter().enumerate() {
            let text = self
                .pipeline
                .text
                .normalize
                .apply(caption, self.pipeline.text.max_words);
            let tokens = self.tokenizer.encode(&text)?;
            if tokens.is_empty() {
                rejects.push(RejectRecord {
                    source: sample.source_path.clone(),
                    sample_id: format!("{}#{i}", sample.image_id),
                    stage: RejectStage::Annotation,
                    unit: RejectUnit::Caption,
                    reason: format!("caption {caption:?} is empty after normalisation"),
                });
                continue;
            }
            captions.push(caption.clone());
            caption_tokens.push(tokens);
        }
        if captions.is_empty() {
            rejects.push(RejectRecord {
                source: sample.source_path.clone(),
                sample_id: sample.image_id.clone(),
                stage: RejectStage::Annotation,
                unit: RejectUnit::Image,
                reason: "image has no valid caption".to_string(),
            });
            return Ok(SampleOutcome {
                row: None,
                rejects,
                file,
            });
        }
        let row = ImageTextRow {
            image_id: sample.image_id,
            split: sample.split,
            source_path: sample.source_path,
            source_blake3: image.source_blake3,
            pixel_blake3: image.pixel_blake3,
            orig_width: image.orig_width,
            orig_height: image.orig_height,
            width: image.width,
            height: image.height,
            image_codec: codec,
            image: image.data,
            captions,
            caption_tokens,
        };
        Ok(SampleOutcome {
            row: Some(row),
            rejects,
            file,
        })
    }
}

/// The dataset name used when `--name` is not given: the output directory's name.
pub fn default_name(out_dir: &Path) -> String {
    out_dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("dataset")
        .to_string()
}
