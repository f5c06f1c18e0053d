//! The loader's random numbers: ChaCha8 keyed by (seed, purpose, epoch, position), so every random
//! choice (epoch order, crop, flip, caption, mask) is a pure function of those and not of thread
//! scheduling, world size or how often the loader was restarted.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

/// What a random stream is used for (keeps streams of different purposes independent).
#[derive(Debug, Clone, Copy)]
#[repr(u64)]
pub enum Purpose {
    /// The epoch's sample order.
    Order = 1,
    /// Mixing-weight subsets.
    Mixing = 2,
    /// Per-sample augmentation and text choices.
    Sample = 3,
    /// The trainer's per-sample draws (PrefixLM split).
    Train = 4,
    /// `mplug show --seed`: which samples a contact sheet shows.
    Show = 5,
}

/// A seeded random source.
pub struct LoaderRng(ChaCha8Rng);

impl LoaderRng {
    /// The stream for (seed, purpose, a, b) — e.g. (epoch, global position).
    pub fn new(seed: u64, purpose: Purpose, a: u64, b: u64) -> Self {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        key[8..16].copy_from_slice(&(purpose as u64).to_le_bytes());
        key[16..24].copy_from_slice(&a.to_le_bytes());
        key[24..].copy_from_slice(&b.to_le_bytes());
        // Hash the key so nearby (epoch, position) pairs give unrelated ChaCha keys.
        LoaderRng(ChaCha8Rng::from_seed(*blake3::hash(&key).as_bytes()))
    }

    /// Uniform integer in `0..n` without modulo bias (Lemire's method with rejection).
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        let threshold = n.wrapping_neg() % n;
        loop {
            let m = (self.0.next_u64() as u128) * (n as u128);
            if (m as u64) >= threshold {
                return (m >> 64) as u64;
            }
        }
    }

    /// Uniform float in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform float in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..4)
            .map(|_| LoaderRng::new(1, Purpose::Sample, 0, 7).below(1000))
            .collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        let mut x = LoaderRng::new(1, Purpose::Sample, 0, 7);
        let mut y = LoaderRng::new(1, Purpose::Sample, 0, 8);
        let xs: Vec<u64> = (0..8).map(|_| x.below(1 << 40)).collect();
        let ys: Vec<u64> = (0..8).map(|_| y.below(1 << 40)).collect();
        assert_ne!(xs, ys);
        // below(n) covers 0..n roughly uniformly.
        let mut r = LoaderRng::new(3, Purpose::Order, 0, 0);
        let mut counts = [0u32; 6];
        for _ in 0..60_000 {
            counts[r.below(6) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_000..11_000).contains(&c)),
            "{counts:?}"
        );
    }
}
