//! An ingest job: source → per-sample processor (pixels ∥ text) → ordered `ShardWriter` → manifest.
//!
//! This is where the pieces meet; each piece knows nothing of the others. The job is generic: a
//! dataset family brings a [`SampleProcessor`] (image–caption rows in [`image_text`], video rows in
//! [`video_text`], and the task schemas through [`image_task::ImageTask`]: QA in [`image_qa`],
//! grounding in [`grounding`], pair classification in [`statement`]); discovery, up-to-date checks,
//! ordering, rejects and the manifest are shared. Output goes to temporary
//! names and `manifest.json` is committed last, so `kill -9` at any moment leaves a directory that is
//! either complete or recognisably incomplete, and a rerun produces the same bytes.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::engine::{EngineOptions, StagePanic, panic_message, progress, run_ordered};
use crate::error::{Error, Result};
use crate::ingest::pipeline::PipelineSpec;
use crate::shards::commit::write_atomic;
use crate::shards::manifest::{
    ImageFilesSummary, MANIFEST_FILE, MANIFEST_FORMAT, MANIFEST_VERSION, Manifest, PartInfo,
    RejectRecord, RejectStage, RejectUnit, SourceFile, Sources, ToolInfo, Totals, VocabInfo,
    json_blake3,
};
use crate::shards::rows::ShardRow;
use crate::shards::writer::{PIPELINE_BLAKE3_KEY, SHARDS_DIR};
use crate::shards::{SchemaSpec, ShardWriter};
use crate::sources::Source;
use crate::text::BertTokenizer;

pub mod datasets;
pub mod grounding;
pub mod image_qa;
pub mod image_task;
pub mod image_text;
pub mod pipeline;
pub mod plan;
pub mod statement;
pub mod text;
#[cfg(feature = "video")]
pub mod video_text;

/// The per-sample work of one dataset family, run on worker threads.
pub trait SampleProcessor: Sync {
    /// What the source yields.
    type Sample: Send;
    /// What goes into the shards.
    type Row: ShardRow + Send;
    /// The row schema.
    fn schema(&self) -> SchemaSpec;
    /// Columns already compressed (JPEG bytes): written without zstd.
    fn precompressed_columns(&self) -> &'static [&'static str];
    /// (sample id, source path) for reject records.
    fn identity(&self, sample: &Self::Sample) -> (String, String);
    /// Turns one sample into a row and/or rejects. `Err` is a bug; bad input is a reject.
    fn process(&self, sample: Self::Sample) -> Result<SampleOutcome<Self::Row>>;
    /// Adds a written row to the totals.
    fn count(&self, row: &Self::Row, totals: &mut Totals);
}

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
    /// Tokenizer (recorded in the manifest).
    pub tokenizer: &'a BertTokenizer,
    /// Worker threads (does not change the output).
    pub threads: usize,
    /// Fail on the first reject.
    pub strict: bool,
    /// Rebuild even if a complete dataset with the same config exists.
    pub force: bool,
    /// Hide progress bars.
    pub quiet: bool,
    /// Write only part I of N (`--part I/N`): a contiguous range of the annotation order.
    pub part: Option<(u64, u64)>,
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
pub struct SampleOutcome<R> {
    /// The row, unless the sample was rejected.
    pub row: Option<R>,
    /// Rejects (the whole sample, or some of its texts).
    pub rejects: Vec<RejectRecord>,
    /// (path, bytes, blake3) of each media file read successfully.
    pub files: Vec<(String, u64, String)>,
}

impl<R> SampleOutcome<R> {
    /// A sample rejected as a whole.
    pub fn rejected(
        source: &str,
        sample_id: &str,
        stage: RejectStage,
        unit: RejectUnit,
        reason: String,
    ) -> Self {
        SampleOutcome {
            row: None,
            rejects: vec![RejectRecord {
                source: source.to_string(),
                sample_id: sample_id.to_string(),
                stage,
                unit,
                reason,
            }],
            files: Vec::new(),
        }
    }
}

impl IngestJob<'_> {
    /// Runs the job with `source`.
    pub fn run<S, P>(&self, source: &S, processor: &P) -> Result<IngestOutcome>
    where
        S: Source<Sample = P::Sample>,
        P: SampleProcessor,
    {
        let spec = processor.schema();
        if self.pipeline.schema != spec.id() {
            return Err(Error::input(format!(
                "pipeline `{}` asks for schema `{}`, but this source writes `{}`",
                self.pipeline.name,
                self.pipeline.schema,
                spec.id()
            )));
        }
        let parsed = source.read()?;
        let part = match self.part {
            Some((index, count)) if count == 0 || index >= count => {
                return Err(Error::input(format!(
                    "--part {index}/{count}: need 0 <= I < N"
                )));
            }
            Some((index, count)) => Some(PartInfo::new(index, count, parsed.samples.len() as u64)),
            None => None,
        };
        let recorded = serde_json::to_value(RecordedPipeline {
            pipeline: &self.pipeline,
            source: &self.source_options,
        })
        .map_err(|e| Error::internal_caused("JSON serialisation failed", e))?;
        let pipeline_blake3 = json_blake3(&recorded);
        let vocab = VocabInfo {
            name: "vocab.txt".to_string(),
            entries: self.tokenizer.vocab_size() as u64,
            blake3: self.tokenizer.vocab_blake3().to_string(),
        };

        if let Some(existing) = self.existing_manifest()? {
            let same_settings = existing.pipeline_blake3 == pipeline_blake3
                && existing.vocab.as_ref() == Some(&vocab);
            if same_settings
                && existing.sources.annotations == parsed.files
                && existing.part == part
                && !self.force
            {
                return Ok(IngestOutcome::UpToDate(existing));
            }
            // A URL dataset whose lists and settings are unchanged but whose image folder gained
            // downloads is rebuilt: fetching more is why the command was run again.
            let lists = |files: &[SourceFile]| -> Vec<SourceFile> {
                let not_outcomes = |f: &&SourceFile| f.name != crate::sources::web::URL_OUTCOMES;
                files.iter().filter(not_outcomes).cloned().collect()
            };
            let only_downloads_changed =
                same_settings && lists(&existing.sources.annotations) == lists(&parsed.files);
            if !self.force && !only_downloads_changed {
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

        let mut writer: ShardWriter<P::Row> = ShardWriter::create(
            &self.out_dir,
            &spec,
            self.pipeline.shards.clone(),
            vec![(PIPELINE_BLAKE3_KEY.to_string(), pipeline_blake3.clone())],
            processor.precompressed_columns(),
        )?;
        let crate::sources::SourceOutput {
            samples,
            rejects: source_rejects,
            files: annotation_files,
        } = parsed;
        // a part writes its range of the samples; the annotations' own rejects go with part 0, so
        // the parts' rejects in part order are the one-machine list
        let (first, samples) = match part {
            Some(p) => (
                p.first,
                samples
                    .into_iter()
                    .skip(p.first as usize)
                    .take((p.end - p.first) as usize)
                    .collect(),
            ),
            None => (0, samples),
        };
        let mut rejects = if part.is_none_or(|p| p.index == 0) {
            source_rejects
        } else {
            Vec::new()
        };
        let mut totals = Totals::default();
        let mut files_hasher = blake3::Hasher::new();
        let mut files = ImageFilesSummary::default();
        let bar = progress::items_bar(samples.len() as u64, "ingest", self.quiet);
        let strict = self.strict;

        run_ordered(
            &EngineOptions::with_threads(self.threads),
            samples,
            |sample| process_caught(processor, sample),
            |seq, outcome: std::result::Result<SampleOutcome<P::Row>, StagePanic>| {
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
                        files: Vec::new(),
                    },
                };
                if strict && let Some(first) = outcome.rejects.first() {
                    return Err(Error::Strict {
                        count: outcome.rejects.len(),
                        first: first.to_string(),
                    });
                }
                for (path, bytes, hash) in &outcome.files {
                    files.files += 1;
                    files.bytes += bytes;
                    files_hasher.update(path.as_bytes());
                    files_hasher.update(b"\0");
                    files_hasher.update(hash.as_bytes());
                    files_hasher.update(b"\n");
                }
                rejects.extend(outcome.rejects);
                if let Some(row) = outcome.row {
                    processor.count(&row, &mut totals);
                    writer.push(row, first + seq)?;
                }
                Ok(())
            },
        )?;
        bar.finish_and_clear();
        let (shards, rows_hash) = writer.finish()?;
        files.blake3 = files_hasher.finalize().to_hex().to_string();
        let count = |unit: RejectUnit| rejects.iter().filter(|r| r.unit == unit).count() as u64;
        totals.samples_rejected = count(RejectUnit::Image) + count(RejectUnit::Clip);
        // Grounding objects and statements are the texts of their schemas.
        totals.texts_rejected =
            count(RejectUnit::Caption) + count(RejectUnit::Ref) + count(RejectUnit::Statement);
        totals.questions_rejected = count(RejectUnit::Question);
        totals.samples_seen = totals.samples_written + totals.samples_rejected;
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
            rows_blake3: Some(rows_hash.to_hex()),
            part,
            merged_parts: None,
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
}

/// Runs the processor on one sample. A failure or panic (a bug: bad inputs are rejects already)
/// becomes an `internal` reject naming the sample, not the end of the run.
fn process_caught<P: SampleProcessor>(processor: &P, sample: P::Sample) -> SampleOutcome<P::Row> {
    let (sample_id, source) = processor.identity(&sample);
    let reason = match catch_unwind(AssertUnwindSafe(|| processor.process(sample))) {
        Ok(Ok(outcome)) => return outcome,
        Ok(Err(e)) => format!("internal error (a bug, please report it): {e}"),
        Err(p) => format!(
            "panic while processing (a bug, please report it): {}",
            panic_message(p.as_ref())
        ),
    };
    SampleOutcome::rejected(
        &source,
        &sample_id,
        RejectStage::Internal,
        RejectUnit::Image,
        reason,
    )
}

/// The dataset name used when `--name` is not given: the output directory's name.
pub fn default_name(out_dir: &Path) -> String {
    out_dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("dataset")
        .to_string()
}
