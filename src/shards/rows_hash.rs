//! A content hash of a dataset's rows, in order, that does not depend on where shards and row
//! groups were cut and that the parts of one ingest (`--part I/N`) add up to.
//!
//! Why not blake3 over the files (as `dataset_blake3`): two ingests of the same rows cut shards
//! differently (one machine vs N parts). Why not a running blake3 over the rows: parts could not be
//! combined without re-reading every row. So each row contributes blake3(sample index ‖ row bytes),
//! read as a 256-bit integer, and the hash is their sum mod 2²⁵⁶: order-dependent through the index
//! (the sample's position in the annotation order, which every part knows), independent of cuts,
//! and additive over parts. Row bytes are Arrow's row format (`arrow::row`), which is canonical
//! for a value of a schema but not promised stable across Arrow versions: the manifest records the
//! writer's version, and `mplug merge` refuses parts of different versions.

use arrow::array::RecordBatch;
use arrow::row::{RowConverter, SortField};

use crate::error::{Error, Result};

/// The running sum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RowsHash {
    /// Little-endian 64-bit limbs.
    limbs: [u64; 4],
}

impl RowsHash {
    /// Adds the row `bytes` of sample `index`.
    pub fn add_row(&mut self, index: u64, bytes: &[u8]) {
        let mut h = blake3::Hasher::new();
        h.update(b"mplug.row");
        h.update(&index.to_le_bytes());
        h.update(bytes);
        let digest = h.finalize();
        let mut limbs = [0u64; 4];
        for (i, limb) in limbs.iter_mut().enumerate() {
            let mut b = [0u8; 8];
            b.copy_from_slice(&digest.as_bytes()[i * 8..i * 8 + 8]);
            *limb = u64::from_le_bytes(b);
        }
        self.add(&RowsHash { limbs });
    }

    /// Adds another sum (a part's).
    pub fn add(&mut self, other: &RowsHash) {
        let mut carry = 0u64;
        for (a, b) in self.limbs.iter_mut().zip(other.limbs) {
            let (s1, c1) = a.overflowing_add(b);
            let (s2, c2) = s1.overflowing_add(carry);
            *a = s2;
            carry = u64::from(c1) + u64::from(c2);
        }
    }

    /// Adds every row of `batch`; `indices[i]` is row i's sample index.
    pub fn add_batch(&mut self, batch: &RecordBatch, indices: &[u64]) -> Result<()> {
        if indices.len() != batch.num_rows() {
            return Err(Error::internal(format!(
                "{} sample indices for {} rows",
                indices.len(),
                batch.num_rows()
            )));
        }
        let fields = batch
            .schema()
            .fields()
            .iter()
            .map(|f| SortField::new(f.data_type().clone()))
            .collect();
        let converter = RowConverter::new(fields)?;
        let rows = converter.convert_columns(batch.columns())?;
        for (i, &index) in indices.iter().enumerate() {
            self.add_row(index, rows.row(i).as_ref());
        }
        Ok(())
    }

    /// 64 hex digits, most significant first.
    pub fn to_hex(&self) -> String {
        self.limbs
            .iter()
            .rev()
            .map(|l| format!("{l:016x}"))
            .collect()
    }

    /// Parses [`Self::to_hex`].
    pub fn from_hex(s: &str) -> Result<Self> {
        let bad = || Error::format(format!("`{s}` is not a 64-digit rows hash"));
        if s.len() != 64 || !s.is_ascii() {
            return Err(bad());
        }
        let mut limbs = [0u64; 4];
        for (i, limb) in limbs.iter_mut().rev().enumerate() {
            *limb = u64::from_str_radix(&s[i * 16..i * 16 + 16], 16).map_err(|_| bad())?;
        }
        Ok(RowsHash { limbs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sum_carries_across_limbs_and_round_trips_through_hex() {
        let mut a = RowsHash {
            limbs: [u64::MAX, u64::MAX, 0, 0],
        };
        a.add(&RowsHash {
            limbs: [1, 0, 0, 0],
        });
        assert_eq!(a.limbs, [0, 0, 1, 0]);
        let mut wrap = RowsHash {
            limbs: [u64::MAX; 4],
        };
        wrap.add(&RowsHash {
            limbs: [1, 0, 0, 0],
        });
        assert_eq!(wrap, RowsHash::default(), "mod 2^256");
        assert_eq!(
            a.to_hex(),
            format!("{:016x}{:016x}{:016x}{:016x}", 0, 1, 0, 0)
        );
        assert_eq!(RowsHash::from_hex(&a.to_hex()).unwrap(), a);
        assert!(RowsHash::from_hex("xyz").is_err());
    }

    #[test]
    fn parts_add_up_to_the_whole_and_order_matters() {
        let rows: Vec<&[u8]> = vec![b"a", b"b", b"c", b"d"];
        let mut whole = RowsHash::default();
        for (i, r) in rows.iter().enumerate() {
            whole.add_row(i as u64, r);
        }
        let (mut p0, mut p1) = (RowsHash::default(), RowsHash::default());
        p0.add_row(0, rows[0]);
        p0.add_row(1, rows[1]);
        p1.add_row(2, rows[2]);
        p1.add_row(3, rows[3]);
        p0.add(&p1);
        assert_eq!(p0, whole);
        let mut swapped = RowsHash::default();
        for (i, r) in [rows[1], rows[0], rows[2], rows[3]].iter().enumerate() {
            swapped.add_row(i as u64, r);
        }
        assert_ne!(swapped, whole);
    }
}
