//! Evaluation batches: a split's items in stored order, this rank's share, with their images given the
//! reference's test transform (bicubic squash to `image_res`, reference §4.3), decoded on a producer
//! thread while the model runs on the caller's.
//!
//! Items are numbered over the whole split in stored order (a VQA image row yields one item per
//! question); `--limit N` keeps items 0..N and rank r of w keeps those with `i % w == r`, so the
//! union over ranks is the unsharded run and a merge by item number restores its order.

use std::sync::mpsc::sync_channel;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::Int32Type;
use rayon::prelude::*;

use super::split::EvalSplit;
use crate::error::{Error, Result};
use crate::loader::transform::eval_transform;
use crate::stages::{RgbImage, decode_stored};

/// Rows read from a shard at a time (and decoded in parallel).
const ROWS_PER_READ: usize = 64;
/// Batches decoded ahead of the model.
const PREFETCH: usize = 2;

/// Which items of a split this process evaluates.
#[derive(Debug, Clone, Copy)]
pub struct ItemSelection {
    /// This rank.
    pub rank: u64,
    /// Ranks in the job.
    pub world_size: u64,
    /// Only the first `limit` items of the split.
    pub limit: Option<u64>,
}

impl ItemSelection {
    /// Everything, on one process.
    pub fn all() -> Self {
        ItemSelection {
            rank: 0,
            world_size: 1,
            limit: None,
        }
    }

    fn keeps(&self, i: u64) -> bool {
        self.limit.is_none_or(|l| i < l) && i % self.world_size.max(1) == self.rank
    }

    /// How many of `total` items this rank evaluates.
    pub fn count(&self, total: u64) -> u64 {
        let n = self.limit.map_or(total, |l| l.min(total));
        (0..n).filter(|&i| self.keeps(i)).count() as u64
    }
}

/// Items with their images, `size`×`size` RGB, one image per item.
#[derive(Debug)]
pub struct EvalBatch<T> {
    /// The items, in split order.
    pub items: Vec<T>,
    /// HWC uint8 pixels, item after item.
    pub pixels: Vec<u8>,
    /// Image side.
    pub size: u32,
}

impl<T> EvalBatch<T> {
    /// Images per item (a clip's frames; 1 for image tasks).
    pub fn frames(&self) -> usize {
        let per = (self.size as usize).pow(2) * 3 * self.items.len().max(1);
        self.pixels.len() / per.max(1)
    }

    /// The images as the model takes them: float32 `[B·F, 3, S, S]` (F frames per item, item after
    /// item), CLIP-normalised, on `device`.
    pub fn images(&self, device: tch::Device) -> tch::Tensor {
        let (b, s) = ((self.items.len() * self.frames()) as i64, self.size as i64);
        let t = tch::Tensor::from_slice(&self.pixels)
            .view([b, s, s, 3])
            .permute([0, 3, 1, 2])
            .to_device(device);
        crate::loader::clip_normalize(&t)
    }
}

/// Token sequences (`[CLS]` first) padded with 0 to the longest → ids and 0/1 mask, `[B, L]`, on
/// `device` (the reference tokenizer's `padding='longest'`).
pub fn text_tensors(seqs: &[Vec<i64>], device: tch::Device) -> (tch::Tensor, tch::Tensor) {
    let (ids, mask, len) = crate::loader::text::pad_longest(seqs);
    let shape = [seqs.len() as i64, len as i64];
    (
        tch::Tensor::from_slice(&ids).view(shape).to_device(device),
        tch::Tensor::from_slice(&mask).view(shape).to_device(device),
    )
}

/// A test transform: row `r` of a shard batch → the model's pixels, `S` wide; a clip's F frames
/// stacked vertically (`S × F·S`), the same F for every row.
pub type Transform<'a> = dyn Fn(&RecordBatch, usize) -> Result<RgbImage> + Sync + 'a;

/// The reference's common test transform of the stored image: `Resize((size, size), BICUBIC)`.
pub fn squash(size: u32) -> impl Fn(&RecordBatch, usize) -> Result<RgbImage> + Sync {
    move |b, r| stored_image(b, r).map(|img| eval_transform(&img, size))
}

/// The stored image of row `row` of a shard batch, decoded.
pub fn stored_image(batch: &RecordBatch, row: usize) -> Result<RgbImage> {
    stored_image_with_prefix(batch, row, "")
}

/// The stored image whose columns carry `prefix` (`right_` for an NLVR2 pair's second image).
pub fn stored_image_with_prefix(batch: &RecordBatch, row: usize, prefix: &str) -> Result<RgbImage> {
    let col = |name: &str| {
        let name = format!("{prefix}{name}");
        batch
            .column_by_name(&name)
            .ok_or_else(|| Error::format(format!("shard lacks column `{name}`")))
    };
    let id = match batch
        .column_by_name("image_id")
        .or_else(|| batch.column_by_name("sample_id"))
    {
        Some(c) => c.as_string::<i32>().value(row).to_string(),
        None => format!("row {row}"),
    };
    let image = col("image")?.as_binary::<i32>();
    if image.is_null(row) {
        return Err(Error::format(format!("row `{id}` has no stored image")));
    }
    decode_stored(
        image.value(row),
        col("image_codec")?.as_string::<i32>().value(row),
        col("width")?.as_primitive::<Int32Type>().value(row) as u32,
        col("height")?.as_primitive::<Int32Type>().value(row) as u32,
    )
    .map_err(|e| Error::format_caused(format!("stored image of `{id}`"), e))
}

/// The columns [`stored_image`] reads.
pub const IMAGE_COLUMNS: [&str; 6] = [
    "image_id",
    "sample_id",
    "width",
    "height",
    "image_codec",
    "image",
];

/// Streams this rank's items of `split` in batches of `batch_size` to `consume`. `expand` turns row
/// `r` of a shard batch (holding `columns` and [`IMAGE_COLUMNS`], where the schema has them) into
/// its items, `transform` its pixels into `image_size`-wide model input.
#[allow(clippy::too_many_arguments)]
pub fn stream<T: Send>(
    split: &EvalSplit,
    columns: &[&str],
    expand: &(dyn Fn(&RecordBatch, usize) -> Result<Vec<T>> + Sync),
    transform: &Transform<'_>,
    selection: ItemSelection,
    image_size: u32,
    batch_size: usize,
    consume: &mut dyn FnMut(EvalBatch<T>) -> Result<()>,
) -> Result<()> {
    let mut cols: Vec<&str> = IMAGE_COLUMNS.to_vec();
    cols.extend(
        columns
            .iter()
            .copied()
            .filter(|c| !IMAGE_COLUMNS.contains(c)),
    );
    let batch_size = batch_size.max(1);
    let (tx, rx) = sync_channel::<Result<EvalBatch<T>>>(PREFETCH);
    std::thread::scope(|scope| {
        let producer = scope.spawn(move || {
            let mut next_item = 0u64;
            let mut cancelled = false;
            let mut pending = EvalBatch {
                items: Vec::new(),
                pixels: Vec::new(),
                size: image_size,
            };
            let result = split.for_each_batch(&cols, ROWS_PER_READ, &mut |b| {
                // items of each row this rank keeps, then the rows' images in parallel
                let mut rows: Vec<(usize, Vec<T>)> = Vec::new();
                for r in 0..b.num_rows() {
                    let kept: Vec<T> = expand(b, r)?
                        .into_iter()
                        .filter(|_| {
                            let keep = selection.keeps(next_item);
                            next_item += 1;
                            keep
                        })
                        .collect();
                    if !kept.is_empty() {
                        rows.push((r, kept));
                    }
                }
                let row_ids: Vec<usize> = rows.iter().map(|(r, _)| *r).collect();
                let images: Vec<Result<RgbImage>> = row_ids
                    .par_iter()
                    .map(|r| transform(b, *r))
                    .collect();
                for ((_, items), image) in rows.into_iter().zip(images) {
                    let image = image?;
                    let per_item = pending.pixels.len() / pending.items.len().max(1);
                    if !pending.items.is_empty() && image.pixels.len() != per_item {
                        return Err(Error::format(
                            "rows with different numbers of frames in one batch (pass --batch-size 1)",
                        ));
                    }
                    for item in items {
                        pending.items.push(item);
                        pending.pixels.extend_from_slice(&image.pixels);
                        if pending.items.len() == batch_size {
                            let full = std::mem::replace(
                                &mut pending,
                                EvalBatch {
                                    items: Vec::new(),
                                    pixels: Vec::new(),
                                    size: image_size,
                                },
                            );
                            if tx.send(Ok(full)).is_err() {
                                cancelled = true; // the consumer stopped
                                return Err(Error::internal("evaluation cancelled"));
                            }
                        }
                    }
                }
                Ok(())
            });
            if cancelled {
                return;
            }
            let last = match result {
                Ok(()) if pending.items.is_empty() => return,
                Ok(()) => Ok(pending),
                Err(e) => Err(e),
            };
            let _ = tx.send(last);
        });
        let mut outcome = Ok(());
        for batch in rx.iter() {
            outcome = batch.and_then(&mut *consume);
            if outcome.is_err() {
                break; // dropping the receiver stops the producer at its next send
            }
        }
        drop(rx);
        if producer.join().is_err() {
            return Err(Error::internal("the evaluation reader thread panicked"));
        }
        outcome
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ranks partition the (limited) items: each item kept by exactly one rank, counts agree.
    #[test]
    fn ranks_partition_the_items() {
        for (w, limit) in [(1, None), (3, None), (4, Some(10)), (7, Some(3))] {
            let sel = |rank| ItemSelection {
                rank,
                world_size: w,
                limit,
            };
            let total = 23u64;
            for i in 0..total {
                let owners = (0..w).filter(|&r| sel(r).keeps(i)).count();
                let want = usize::from(limit.is_none_or(|l| i < l));
                assert_eq!(owners, want, "item {i}, world {w}");
            }
            let sum: u64 = (0..w).map(|r| sel(r).count(total)).sum();
            assert_eq!(sum, limit.map_or(total, |l| l.min(total)));
        }
    }
}
