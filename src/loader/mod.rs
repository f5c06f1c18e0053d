//! The streaming loader: shard sets → a deterministic, elastic global order → row-group reads →
//! decode + transforms on a worker pool → text (caption, `[CLS]`, padding, MLM) → collated batches
//! in a bounded prefetch queue → the consumer, as `tch::Tensor`s.
//!
//! Flow position: reads finished datasets (`shards`), feeds `train`/`eval`. Every random choice is
//! keyed by (seed, epoch, global position) ([`rng`]), so the batches are the same for any thread
//! count, after a restart from [`LoaderState`], and (as a global sequence) for any world size.
//!
//! Threads: one reader (walks this rank's positions, reads each row group once into a small cache),
//! `threads` workers (decode, crop, resize, flip, text), one collator (puts samples back in order,
//! builds batches and tensors, blocks when `prefetch` batches wait). Dropping the [`Loader`] closes
//! the queue and joins them; a worker panic becomes an `Err` batch at the consumer.

pub mod color_jitter;
pub mod grounding_transform;
pub mod index;
pub mod order;
pub mod randaugment;
pub mod reader;
pub mod rng;
pub mod sample;
pub mod text;
pub mod transform;

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::engine::{EngineOptions, run_ordered};
use crate::error::{Error, Result};
use crate::stages::decode_stored;
use index::DatasetIndex;
use reader::{RowGroupData, read_row_group};
use rng::{LoaderRng, Purpose};
use sample::{SampleKind, SampleText};

use crate::text::BertTokenizer;

/// Loader settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoaderConfig {
    /// Seed of every random choice.
    pub seed: u64,
    /// Samples per batch on this rank.
    pub batch_size: usize,
    /// Output image side.
    pub image_size: u32,
    /// Training augmentation (RandomResizedCrop + flip) or evaluation resize.
    pub train: bool,
    /// RandomResizedCrop scale range (the reference: (0.5, 1) fine-tuning, (0.2, 1) pre-training).
    pub crop_scale: (f64, f64),
    /// RandomHorizontalFlip(p=0.5) after the crop, as every reference training transform has.
    #[serde(default = "default_true")]
    pub hflip: bool,
    /// The reference's `RandomAugment(2, 7)` after crop and flip (training only).
    #[serde(default)]
    pub randaugment: bool,
    /// The grounding transforms' switches (`aug_crop`, `aug_scale`, `aug_translate`).
    #[serde(default)]
    pub grounding: grounding_transform::GroundingAugment,
    /// Token limit including `[CLS]`.
    pub max_tokens: usize,
    /// MLM selection probability (0 = no MLM labels).
    pub mlm_probability: f64,
    /// Row groups per shuffle window.
    pub shuffle_window: usize,
    /// Worker threads.
    pub threads: usize,
    /// Batches waiting in the queue at most.
    pub prefetch: usize,
    /// This rank.
    pub rank: u64,
    /// Ranks in the job.
    pub world_size: u64,
    /// Drop the last, short batch of an epoch.
    pub drop_last: bool,
    /// Epochs to produce (the loader then ends).
    pub epochs: u64,
}

fn default_true() -> bool {
    true
}

impl Default for LoaderConfig {
    fn default() -> Self {
        LoaderConfig {
            seed: 0,
            batch_size: 32,
            image_size: 384,
            train: true,
            crop_scale: (0.5, 1.0),
            hflip: true,
            randaugment: false,
            grounding: Default::default(),
            max_tokens: 30,
            mlm_probability: 0.0,
            shuffle_window: 8,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            prefetch: 4,
            rank: 0,
            world_size: 1,
            drop_last: true,
            epochs: 1,
        }
    }
}

/// Where a run stands: restore it to continue at the exact next sample (also with another world
/// size, as long as it divides `position`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoaderState {
    /// The seed.
    pub seed: u64,
    /// Current epoch.
    pub epoch: u64,
    /// Global position (over all ranks) of the next sample of the epoch.
    pub position: u64,
}

/// Which stored sample a batch row came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SampleKey {
    /// Dataset name.
    pub dataset: String,
    /// Row id.
    pub image_id: String,
    /// The question within the row (question samples only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<u32>,
    /// Global sample index in the loader's index.
    pub sample: u64,
    /// The first global sample of the row: equal for every sample of one image (the ITC/ITM
    /// positives of retrieval), and equal to `sample` when a row is one sample.
    #[serde(skip)]
    pub image: u64,
    /// Epoch.
    pub epoch: u64,
    /// Global position in the epoch.
    pub position: u64,
    /// Training crop `[top, left, height, width]` in stored-image pixels (None in evaluation).
    pub crop: Option<[u32; 4]>,
    /// Whether the training transform flipped the image.
    pub flipped: bool,
    /// RandAugment ops applied, in order (e.g. `ShearX(-0.21)`).
    pub augment: Vec<String>,
}

/// One batch on the host, before it becomes tensors.
#[derive(Debug, Clone)]
pub struct HostBatch {
    /// `[B·F, S, S, 3]` uint8 pixels (HWC per image; F images per sample, sample after sample).
    pub images: Vec<u8>,
    /// Batch size.
    pub batch: usize,
    /// F: images per sample (2 for an NLVR2 pair, else 1).
    pub images_per_sample: usize,
    /// Image side.
    pub size: u32,
    /// `[B, L]` token ids.
    pub input_ids: Vec<i64>,
    /// `[B, L]` 0/1.
    pub attention_mask: Vec<i64>,
    /// `[B, L]` MLM labels (-100 = not selected), when MLM is on.
    pub mlm_labels: Option<Vec<i64>>,
    /// L.
    pub seq_len: usize,
    /// The answers of question samples.
    pub answers: Option<HostAnswers>,
    /// `[B]` class labels of statement samples.
    pub labels: Option<Vec<i64>>,
    /// Per caption-target sample, every caption of its image (SCST's reward references).
    pub references: Option<Vec<Vec<String>>>,
    /// Per grounding sample: the target box (cx, cy, w, h) / S and the image's place on the
    /// canvas `[left, top, width, height]` (outside it the normalised image is zero).
    pub boxes: Option<Vec<([f64; 4], [u32; 4])>>,
    /// Per row.
    pub keys: Vec<SampleKey>,
    /// The state after this batch.
    pub state_after: LoaderState,
}

/// Every answer of a batch's questions, question after question (the reference's `answer`,
/// `weights` and `n`).
#[derive(Debug, Clone, PartialEq)]
pub struct HostAnswers {
    /// `[A, La]` ids of `[CLS] answer [SEP]`, 0-padded.
    pub ids: Vec<i64>,
    /// `[A, La]` 0/1.
    pub mask: Vec<i64>,
    /// La.
    pub len: usize,
    /// `[A]` weights.
    pub weights: Vec<f64>,
    /// `[B]` answers per question.
    pub counts: Vec<i64>,
}

/// [`HostAnswers`] as tensors.
#[derive(Debug)]
pub struct AnswerTensors {
    /// `[A, La]` int64.
    pub ids: tch::Tensor,
    /// `[A, La]` int64 0/1.
    pub mask: tch::Tensor,
    /// `[A]` float32.
    pub weights: tch::Tensor,
    /// `[B]` int64.
    pub counts: tch::Tensor,
}

/// A batch as tensors.
#[derive(Debug)]
pub struct Batch {
    /// `[B·F, 3, S, S]`: uint8, or float normalised with the CLIP mean/std.
    pub images: tch::Tensor,
    /// `[B, L]` int64.
    pub input_ids: tch::Tensor,
    /// `[B, L]` int64 0/1.
    pub attention_mask: tch::Tensor,
    /// `[B, L]` int64, -100 where not masked.
    pub mlm_labels: Option<tch::Tensor>,
    /// The answers of question samples.
    pub answers: Option<AnswerTensors>,
    /// `[B]` int64 labels of statement samples.
    pub labels: Option<tch::Tensor>,
    /// `[B, 4]` float32 target boxes of grounding samples.
    pub boxes: Option<tch::Tensor>,
    /// Per row.
    pub keys: Vec<SampleKey>,
}

/// CLIP normalisation mean (the reference's, every task but grounding evaluation).
pub const CLIP_MEAN: [f64; 3] = [0.48145466, 0.4578275, 0.40821073];
/// CLIP normalisation std.
pub const CLIP_STD: [f64; 3] = [0.26862954, 0.26130258, 0.27577711];

impl HostBatch {
    /// `[B, L]` caption ids before MLM masking (the labels where a token was selected).
    pub fn caption_ids(&self) -> Vec<i64> {
        match &self.mlm_labels {
            Some(labels) => self
                .input_ids
                .iter()
                .zip(labels)
                .map(|(&m, &lab)| if lab != -100 { lab } else { m })
                .collect(),
            None => self.input_ids.clone(),
        }
    }

    /// The image index of each row: equal for rows of the same image (samples of one row), which
    /// ITC and ITM take as positives.
    pub fn sample_indices(&self) -> Vec<i64> {
        self.keys.iter().map(|k| k.image as i64).collect()
    }

    /// Tensors on `device` (staged through pinned memory when it is CUDA): uint8 NCHW images, or
    /// `(x / 255 - mean) / std` as float32 when `normalize`.
    pub fn to_tensors(&self, device: tch::Device, normalize: bool) -> Batch {
        let (b, s) = (self.batch as i64, self.size as i64);
        let l = self.seq_len as i64;
        let f = self.images_per_sample.max(1) as i64;
        let cuda = device.is_cuda();
        let move_to = |t: tch::Tensor| {
            if cuda {
                t.pin_memory(device)
                    .to_device_(device, t.kind(), true, false)
            } else {
                t
            }
        };
        let images = move_to(tch::Tensor::from_slice(&self.images).view([b * f, s, s, 3]))
            .permute([0, 3, 1, 2])
            .contiguous();
        let images = if normalize {
            let images = clip_normalize(&images);
            match &self.boxes {
                // NormalizeAndPad: zero outside the image after normalising
                Some(boxes) => {
                    let mask = canvas_mask(boxes, s).to_device(images.device());
                    images * mask
                }
                None => images,
            }
        } else {
            images
        };
        Batch {
            images,
            input_ids: move_to(tch::Tensor::from_slice(&self.input_ids).view([b, l])),
            attention_mask: move_to(tch::Tensor::from_slice(&self.attention_mask).view([b, l])),
            mlm_labels: self
                .mlm_labels
                .as_ref()
                .map(|m| move_to(tch::Tensor::from_slice(m).view([b, l]))),
            answers: self.answers.as_ref().map(|a| {
                let shape = [a.weights.len() as i64, a.len as i64];
                AnswerTensors {
                    ids: move_to(tch::Tensor::from_slice(&a.ids).view(shape)),
                    mask: move_to(tch::Tensor::from_slice(&a.mask).view(shape)),
                    weights: move_to(tch::Tensor::from_slice(&a.weights).to_kind(tch::Kind::Float)),
                    counts: move_to(tch::Tensor::from_slice(&a.counts)),
                }
            }),
            labels: self
                .labels
                .as_ref()
                .map(|v| move_to(tch::Tensor::from_slice(v))),
            boxes: self.boxes.as_ref().map(|v| {
                let flat: Vec<f32> = v.iter().flat_map(|(t, _)| t.map(|x| x as f32)).collect();
                move_to(tch::Tensor::from_slice(&flat).view([b, 4]))
            }),
            keys: self.keys.clone(),
        }
    }
}

/// `[B, 1, S, S]` float32: 1 inside each sample's image region `[left, top, width, height]`.
fn canvas_mask(boxes: &[([f64; 4], [u32; 4])], s: i64) -> tch::Tensor {
    let s = s as usize;
    let mut m = vec![0f32; boxes.len() * s * s];
    for (i, (_, [left, top, w, h])) in boxes.iter().enumerate() {
        for y in *top as usize..(*top + *h) as usize {
            let row = i * s * s + y * s;
            m[row + *left as usize..row + (*left + *w) as usize].fill(1.0);
        }
    }
    tch::Tensor::from_slice(&m).view([boxes.len() as i64, 1, s as i64, s as i64])
}

/// uint8 NCHW images → float32 `(x / 255 - mean) / std` with the CLIP mean and std (the reference's
/// `ToTensor` + `Normalize`), on the images' device.
pub fn clip_normalize(images: &tch::Tensor) -> tch::Tensor {
    let device = images.device();
    let stat = |v: &[f64; 3]| {
        tch::Tensor::from_slice(v)
            .to_kind(tch::Kind::Float)
            .to_device(device)
            .view([1, 3, 1, 1])
    };
    (images.to_kind(tch::Kind::Float) / 255.0 - stat(&CLIP_MEAN)) / stat(&CLIP_STD)
}

/// Counters the loader keeps (cheap atomics), for `loader bench` and the trainer's log.
#[derive(Debug, Default)]
pub struct LoaderStats {
    /// Samples through the workers.
    pub samples: AtomicU64,
    /// Row groups read.
    pub row_groups_read: AtomicU64,
    /// Nanoseconds spent reading row groups.
    pub read_ns: AtomicU64,
    /// Nanoseconds of worker time (decode + transforms + text), summed over workers.
    pub work_ns: AtomicU64,
    /// Nanoseconds the consumer waited in `next()`.
    pub wait_ns: AtomicU64,
    /// Batches handed to the consumer.
    pub batches: AtomicU64,
}

/// A worker's output for one sample.
struct SampleOut {
    pixels: Vec<u8>,
    text: SampleText,
    key: SampleKey,
}

/// The streaming loader (one rank).
pub struct Loader {
    rx: Option<crossbeam_channel::Receiver<Result<HostBatch>>>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<LoaderStats>,
    state: LoaderState,
    started: Instant,
}

impl Loader {
    /// Starts a loader over `index` at `state` (a fresh run: `LoaderState { seed, epoch: 0,
    /// position: 0 }`).
    pub fn start(
        index: Arc<DatasetIndex>,
        excluded: Arc<HashSet<u64>>,
        config: LoaderConfig,
        state: LoaderState,
    ) -> Result<Self> {
        if config.batch_size == 0 || config.world_size == 0 || config.rank >= config.world_size {
            return Err(Error::input(format!(
                "batch size {} / rank {} / world size {}: need batch >= 1 and rank < world size",
                config.batch_size, config.rank, config.world_size
            )));
        }
        if state.seed != config.seed {
            return Err(Error::input("the state was saved with another seed"));
        }
        if !state.position.is_multiple_of(config.world_size) {
            return Err(Error::input(format!(
                "cannot resume at global position {} with world size {}: it must divide the position \
                 (keep the global batch size constant)",
                state.position, config.world_size
            )));
        }
        let (tx, rx) = crossbeam_channel::bounded(config.prefetch.max(1));
        let stats = Arc::new(LoaderStats::default());
        let st = stats.clone();
        let thread = std::thread::Builder::new()
            .name("mplug-loader".into())
            .spawn(move || produce(&index, &excluded, &config, state, &st, &tx))
            .map_err(|e| Error::internal_caused("cannot start the loader thread", e))?;
        Ok(Loader {
            rx: Some(rx),
            thread: Some(thread),
            stats,
            state,
            started: Instant::now(),
        })
    }

    /// The next batch on the host; `None` after the last epoch.
    pub fn next_host(&mut self) -> Option<Result<HostBatch>> {
        let rx = self.rx.as_ref()?;
        let t = Instant::now();
        let got = rx.recv().ok();
        self.stats
            .wait_ns
            .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        if let Some(Ok(b)) = &got {
            self.state = b.state_after;
            self.stats.batches.fetch_add(1, Ordering::Relaxed);
        }
        got
    }

    /// The state to save: restoring it continues after the last batch returned.
    pub fn state(&self) -> LoaderState {
        self.state
    }

    /// Counters.
    pub fn stats(&self) -> &LoaderStats {
        &self.stats
    }

    /// Batches waiting in the queue.
    pub fn queue_depth(&self) -> usize {
        self.rx.as_ref().map_or(0, |r| r.len())
    }

    /// Share of wall time the consumer spent waiting for data since the start.
    pub fn starved_fraction(&self) -> f64 {
        let wait = self.stats.wait_ns.load(Ordering::Relaxed) as f64 / 1e9;
        wait / self.started.elapsed().as_secs_f64().max(1e-9)
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        // Closing the queue makes the collator's next send fail, which stops the workers and
        // the reader; then the thread is joined, so nothing outlives the loader.
        self.rx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The background work: epochs until `config.epochs`, or until the consumer goes away.
fn produce(
    index: &DatasetIndex,
    excluded: &HashSet<u64>,
    config: &LoaderConfig,
    start: LoaderState,
    stats: &LoaderStats,
    tx: &crossbeam_channel::Sender<Result<HostBatch>>,
) {
    let mut state = start;
    while state.epoch < config.epochs {
        match run_epoch(index, excluded, config, state, stats, tx) {
            Ok(true) => {}
            Ok(false) => return, // consumer gone
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        }
        state = LoaderState {
            seed: state.seed,
            epoch: state.epoch + 1,
            position: 0,
        };
    }
}

/// A sample to process: its ordinal on this rank, its global position and index, and its row group.
type WorkItem = Result<(u64, u64, u64, Arc<RowGroupData>, index::SampleLocation)>;

/// One epoch from `state.position`; `Ok(false)` when the consumer went away.
fn run_epoch(
    index: &DatasetIndex,
    excluded: &HashSet<u64>,
    config: &LoaderConfig,
    state: LoaderState,
    stats: &LoaderStats,
    tx: &crossbeam_channel::Sender<Result<HostBatch>>,
) -> Result<bool> {
    let blocks = index.epoch_blocks(config.seed, state.epoch, excluded);
    let global = order::epoch_order(&blocks, config.seed, state.epoch, config.shuffle_window);
    if global.is_empty() {
        return Err(Error::input(
            "an epoch of the loader's inputs holds no samples",
        ));
    }
    let (w, r) = (config.world_size, config.rank);
    let per_rank = order::per_rank(global.len() as u64, w);
    let first_k = state.position / w;
    // Reader: this rank's samples in order, each row group read once while it is in use.
    let cache_size = config.shuffle_window.max(1) * 2;
    let mut cache: VecDeque<Arc<RowGroupData>> = VecDeque::new();
    let items = (first_k..per_rank).map(move |k| -> WorkItem {
        let p = order::global_position(r, w, k);
        let s = order::padded(&global, p);
        let loc = index.locate(s);
        let data = match cache.iter().find(|d| d.row_group == loc.row_group) {
            Some(d) => d.clone(),
            None => {
                let t = Instant::now();
                let d = read_row_group(index, loc.row_group)?;
                stats
                    .read_ns
                    .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
                stats.row_groups_read.fetch_add(1, Ordering::Relaxed);
                if cache.len() == cache_size {
                    cache.pop_front();
                }
                cache.push_back(d.clone());
                d
            }
        };
        Ok((k, p, s, data, loc))
    });
    let work = |item: WorkItem| -> Result<SampleOut> {
        let t = Instant::now();
        let (_k, p, s, data, loc) = item?;
        let out = process_sample(index, config, state.epoch, p, s, &data, loc);
        stats
            .work_ns
            .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        stats.samples.fetch_add(1, Ordering::Relaxed);
        out
    };
    let mut pending: Vec<SampleOut> = Vec::with_capacity(config.batch_size);
    let mut consumer_gone = false;
    let last_k = per_rank - 1;
    let engine = EngineOptions {
        threads: config.threads.max(1),
        max_in_flight: (config.threads.max(1) * 4).max(config.batch_size * 2),
    };
    let result = run_ordered(&engine, items, work, |seq, out| {
        let out = match out {
            Ok(Ok(o)) => o,
            Ok(Err(e)) => return Err(e),
            Err(panic) => {
                return Err(Error::internal(format!(
                    "a loader worker panicked: {}",
                    panic.0
                )));
            }
        };
        pending.push(out);
        let k = first_k + seq;
        let end_of_epoch = k == last_k;
        if pending.len() == config.batch_size || (end_of_epoch && !config.drop_last) {
            let next_position = (k + 1) * w;
            let state_after = if end_of_epoch {
                LoaderState {
                    seed: config.seed,
                    epoch: state.epoch + 1,
                    position: 0,
                }
            } else {
                LoaderState {
                    seed: config.seed,
                    epoch: state.epoch,
                    position: next_position,
                }
            };
            let batch = collate(std::mem::take(&mut pending), config, state_after);
            if tx.send(Ok(batch)).is_err() {
                consumer_gone = true;
                return Err(Error::internal("consumer gone"));
            }
        }
        Ok(())
    });
    if consumer_gone {
        return Ok(false);
    }
    result.map(|()| true)
}

fn process_sample(
    index: &DatasetIndex,
    config: &LoaderConfig,
    epoch: u64,
    position: u64,
    sample: u64,
    data: &RowGroupData,
    loc: index::SampleLocation,
) -> Result<SampleOut> {
    let mut rng = LoaderRng::new(config.seed, Purpose::Sample, epoch, position);
    let side = config.train
        && index
            .kind
            .names_a_side(data.batch(), loc.row as usize, loc.item as usize)?;
    let stored = data.sample(loc.row as usize)?;
    let rg = &index.row_groups[data.row_group];
    let key = |crop, flipped, augment| SampleKey {
        dataset: index.datasets[rg.dataset].manifest.name.clone(),
        image_id: stored.image_id.to_string(),
        item: index.kind.items_column().map(|_| loc.item),
        sample,
        image: sample - loc.item as u64,
        epoch,
        position,
        crop,
        flipped,
        augment,
    };
    if let SampleKind::Grounding(tokenizer) = &index.kind {
        let (pixels, text, flipped, augment) =
            grounding_sample(tokenizer, &stored, data, loc, config, &mut rng)?;
        return Ok(SampleOut {
            pixels,
            text,
            key: key(None, flipped, augment),
        });
    }
    let (mut pixels, crop, flipped, augment) = load_image(&stored, config, side, &mut rng)?;
    if index.kind.images() == 2 {
        let right = data.sample_with_prefix(loc.row as usize, "right_")?;
        pixels.extend(load_image(&right, config, side, &mut rng)?.0);
    }
    let mut text = index.kind.text(
        data.batch(),
        loc.row as usize,
        loc.item as usize,
        config.max_tokens,
        &mut rng,
    )?;
    if config.train && index.kind.images() == 2 && rng.unit() < 0.5 {
        // NLVR2's augmentation (reference §3.6): the pair swapped, and `left` ↔ `right` in the text
        let half = pixels.len() / 2;
        pixels.rotate_left(half);
        index.kind.swap_sides(&mut text);
    }
    Ok(SampleOut {
        pixels,
        key: key(crop, flipped, augment),
        text,
    })
}

/// A grounding expression through the grounding transforms: canvas pixels, the tokenised
/// (possibly side-swapped) phrase with its target and region, whether it flipped, and the jitter.
fn grounding_sample(
    tokenizer: &BertTokenizer,
    stored: &reader::StoredSample<'_>,
    data: &RowGroupData,
    loc: index::SampleLocation,
    config: &LoaderConfig,
    rng: &mut LoaderRng,
) -> Result<(Vec<u8>, SampleText, bool, Vec<String>)> {
    let img = decode_stored(stored.image, stored.codec, stored.width, stored.height)
        .map_err(|e| Error::format_caused(format!("stored image {}", stored.image_id), e))?;
    let (phrase, bx) = SampleKind::grounding_input(
        data.batch(),
        loc.row as usize,
        loc.item as usize,
        img.width,
        img.height,
    )?;
    let g = if config.train {
        grounding_transform::train_transform(
            &img,
            bx,
            &phrase,
            config.image_size,
            config.grounding,
            rng,
        )
    } else {
        grounding_transform::eval_transform(&img, bx, &phrase, config.image_size)
    };
    let (flipped, augment) = g.trace.as_ref().map_or((false, Vec::new()), |t| {
        let ops = t.jitter.iter().map(|(op, f)| format!("{op:?}({f:.3})"));
        (t.flipped, ops.collect())
    });
    let text = SampleText::Grounding {
        ids: SampleKind::grounding_query(tokenizer, &g.text)?,
        target: g.target,
        region: g.region,
    };
    Ok((g.canvas.pixels, text, flipped, augment))
}

/// A stored image through the training transform (crop, flip unless the text names a side,
/// RandAugment) or the evaluation resize: its pixels, crop, flip and augmentation ops.
#[allow(clippy::type_complexity)]
fn load_image(
    stored: &reader::StoredSample<'_>,
    config: &LoaderConfig,
    side: bool,
    rng: &mut LoaderRng,
) -> Result<(Vec<u8>, Option<[u32; 4]>, bool, Vec<String>)> {
    let img = decode_stored(stored.image, stored.codec, stored.width, stored.height)
        .map_err(|e| Error::format_caused(format!("stored image {}", stored.image_id), e))?;
    let (mut out, crop, flipped) = if config.train {
        let (o, b, f) = transform::train_transform(
            &img,
            config.image_size,
            config.crop_scale,
            config.hflip && !side,
            rng,
        );
        (o, Some([b.i, b.j, b.h, b.w]), f)
    } else {
        (
            transform::eval_transform(&img, config.image_size),
            None,
            false,
        )
    };
    let augment = if config.train && config.randaugment {
        randaugment::random_augment(&mut out, 2, rng)
            .iter()
            .map(|op| format!("{op:?}"))
            .collect()
    } else {
        Vec::new()
    };
    Ok((out.pixels, crop, flipped, augment))
}

fn collate(samples: Vec<SampleOut>, config: &LoaderConfig, state_after: LoaderState) -> HostBatch {
    let seqs: Vec<Vec<i64>> = samples
        .iter()
        .map(|s| s.text.input_ids().to_vec())
        .collect();
    let (input_ids, attention_mask, seq_len) = text::pad_longest(&seqs);
    let answers = collate_answers(&samples);
    let (input_ids, mlm_labels) = if config.mlm_probability > 0.0 {
        let mut ids = Vec::with_capacity(input_ids.len());
        let mut labels = Vec::with_capacity(input_ids.len());
        for (row, s) in samples.iter().enumerate() {
            // Keyed by the sample's position: the mask does not depend on its batch neighbours.
            let mut rng = LoaderRng::new(
                config.seed,
                Purpose::Sample,
                s.key.epoch,
                s.key.position ^ (1 << 63),
            );
            let (m, l) = text::mlm_mask(
                &input_ids[row * seq_len..(row + 1) * seq_len],
                config.mlm_probability,
                &mut rng,
            );
            ids.extend(m);
            labels.extend(l);
        }
        (ids, Some(labels))
    } else {
        (input_ids, None)
    };
    let mut images =
        Vec::with_capacity(samples.len() * samples.first().map_or(0, |s| s.pixels.len()));
    for s in &samples {
        images.extend_from_slice(&s.pixels);
    }
    let labels: Option<Vec<i64>> = samples
        .iter()
        .map(|s| match s.text {
            SampleText::Statement { label, .. } => Some(label),
            _ => None,
        })
        .collect();
    let references: Option<Vec<Vec<String>>> = samples
        .iter()
        .map(|s| match &s.text {
            SampleText::CaptionTarget { references, .. } => Some(references.clone()),
            _ => None,
        })
        .collect();
    let boxes: Option<Vec<([f64; 4], [u32; 4])>> = samples
        .iter()
        .map(|s| match s.text {
            SampleText::Grounding { target, region, .. } => Some((target, region)),
            _ => None,
        })
        .collect();
    let per_image = (config.image_size as usize).pow(2) * 3;
    HostBatch {
        references: references.filter(|r| !r.is_empty()),
        boxes: boxes.filter(|b| !b.is_empty()),
        images_per_sample: samples
            .first()
            .map_or(1, |s| s.pixels.len() / per_image.max(1)),
        labels: labels.filter(|l| !l.is_empty()),
        images,
        batch: samples.len(),
        size: config.image_size,
        input_ids,
        attention_mask,
        mlm_labels,
        seq_len,
        answers,
        keys: samples.into_iter().map(|s| s.key).collect(),
        state_after,
    }
}

/// The answers of question samples, question after question, padded to the longest.
fn collate_answers(samples: &[SampleOut]) -> Option<HostAnswers> {
    let mut seqs = Vec::new();
    let mut weights = Vec::new();
    let mut counts = Vec::new();
    for s in samples {
        let SampleText::Question {
            answers,
            weights: w,
            ..
        } = &s.text
        else {
            return None;
        };
        seqs.extend(answers.iter().cloned());
        weights.extend_from_slice(w);
        counts.push(answers.len() as i64);
    }
    let (ids, mask, len) = text::pad_longest(&seqs);
    Some(HostAnswers {
        ids,
        mask,
        len,
        weights,
        counts,
    })
}

/// Waits up to `timeout` for the next batch (used by tests to prove the queue never hangs).
pub fn recv_timeout(loader: &mut Loader, timeout: Duration) -> Option<Result<HostBatch>> {
    let rx = loader.rx.as_ref()?;
    match rx.recv_timeout(timeout) {
        Ok(b) => {
            if let Ok(b) = &b {
                loader.state = b.state_after;
            }
            Some(b)
        }
        Err(_) => None,
    }
}
