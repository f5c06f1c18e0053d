//! The epoch's global order and its partition across ranks: a pure function of (seed, epoch,
//! dataset index), so restarts and a change of GPU count neither repeat nor skip a sample.
//!
//! Order: row groups (the read unit) are shuffled, then grouped into windows of `window` row groups,
//! and the samples of each window are shuffled together (FFCV's quasi-random order): reads stay
//! sequential per row group while neighbouring samples still come from different parts of the data.
//!
//! Partition: the global order is padded to a multiple of the world size by repeating its first
//! samples (at most `world_size - 1` repeats; nothing is dropped), and rank `r` takes the global
//! positions `p` with `p % world_size == r`. So global step `t` with global batch `G = world_size ×
//! batch` always holds positions `t·G .. (t+1)·G`, whatever the world size: the elastic determinism
//! of MosaicML Streaming, with a state of three integers.

use super::rng::{LoaderRng, Purpose};

/// A run of consecutive sample indices that live in one row group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// First global sample index.
    pub first: u64,
    /// Samples in the block.
    pub len: u32,
}

/// The samples of one epoch in global order (global sample indices).
pub fn epoch_order(blocks: &[Block], seed: u64, epoch: u64, window: usize) -> Vec<u64> {
    let mut rng = LoaderRng::new(seed, Purpose::Order, epoch, 0);
    let mut order: Vec<usize> = (0..blocks.len()).collect();
    rng.shuffle(&mut order);
    let mut out = Vec::with_capacity(blocks.iter().map(|b| b.len as usize).sum());
    for group in order.chunks(window.max(1)) {
        let start = out.len();
        for &b in group {
            let block = blocks[b];
            out.extend(block.first..block.first + block.len as u64);
        }
        rng.shuffle(&mut out[start..]);
    }
    out
}

/// Samples per rank for an epoch of `total` samples: `ceil(total / world_size)`.
pub fn per_rank(total: u64, world_size: u64) -> u64 {
    total.div_ceil(world_size.max(1))
}

/// The global position of this rank's `k`-th sample.
pub fn global_position(rank: u64, world_size: u64, k: u64) -> u64 {
    k * world_size + rank
}

/// The sample at global position `p` of an epoch order padded by wrapping around.
pub fn padded(order: &[u64], p: u64) -> u64 {
    order[(p % order.len() as u64) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks() -> Vec<Block> {
        // Row groups of uneven size, like the end of a shard.
        [7u32, 7, 7, 3, 7, 7, 5]
            .iter()
            .scan(0u64, |first, &len| {
                let b = Block { first: *first, len };
                *first += len as u64;
                Some(b)
            })
            .collect()
    }

    #[test]
    fn an_epoch_is_a_permutation_and_differs_between_epochs() {
        let b = blocks();
        let e0 = epoch_order(&b, 42, 0, 2);
        let mut sorted = e0.clone();
        sorted.sort();
        assert_eq!(sorted, (0..43).collect::<Vec<u64>>());
        assert_eq!(e0, epoch_order(&b, 42, 0, 2));
        assert_ne!(e0, epoch_order(&b, 42, 1, 2));
        assert_ne!(e0, epoch_order(&b, 43, 0, 2));
    }

    #[test]
    fn windows_keep_reads_within_few_row_groups() {
        let b = blocks();
        let e = epoch_order(&b, 1, 0, 2);
        let group_of = |s: u64| {
            b.iter()
                .position(|x| s >= x.first && s < x.first + x.len as u64)
                .unwrap()
        };
        // Cutting the order greedily into runs that touch at most 2 row groups gives exactly the
        // ceil(7 / 2) = 4 windows: no window mixes in a third row group.
        let mut runs = 0;
        let mut groups = std::collections::BTreeSet::new();
        for &s in &e {
            groups.insert(group_of(s));
            if groups.len() > 2 {
                runs += 1;
                groups = [group_of(s)].into();
            }
        }
        assert_eq!(runs + 1, 4);
    }

    #[test]
    fn world_sizes_see_the_same_global_order_exactly_once_plus_padding() {
        let order: Vec<u64> = (0..10).map(|x| x * 3).collect();
        for w in [1u64, 2, 4] {
            let n = per_rank(order.len() as u64, w);
            let mut by_position = Vec::new();
            for k in 0..n {
                for r in 0..w {
                    by_position.push(padded(&order, global_position(r, w, k)));
                }
            }
            // Concatenated per global step, the ranks give the global order, padded by wrapping.
            let pad = (n * w) as usize - order.len();
            let mut expected = order.clone();
            expected.extend_from_slice(&order[..pad]);
            assert_eq!(by_position, expected, "world size {w}");
        }
    }
}
