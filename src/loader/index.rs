//! What the loader can read: the row groups of one or more shard sets, numbered into one global
//! sample index, with per-dataset mixing weights and an exclusion list applied, and each shard's
//! hash checked against its manifest the first time it is read.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::order::Block;
use super::rng::{LoaderRng, Purpose};
use crate::error::{Error, Result};
use crate::query::catalog::discover_datasets;
use crate::shards::Manifest;
use crate::shards::reader::unreadable;

/// One input dataset with its mixing weight.
#[derive(Debug, Clone)]
pub struct DatasetInput {
    /// Dataset directory (with manifest.json) or a folder searched for datasets.
    pub path: PathBuf,
    /// Samples per epoch as a multiple of the dataset's size: 1 = each once, 0.5 = a seeded half,
    /// 2 = each twice.
    pub weight: f64,
}

/// A row group of a shard.
#[derive(Debug, Clone)]
pub struct RowGroupRef {
    /// Index into [`DatasetIndex::datasets`].
    pub dataset: usize,
    /// Shard path.
    pub shard: usize,
    /// Row group within the shard.
    pub row_group: usize,
    /// Rows in the row group.
    pub rows: u32,
}

/// A dataset the index reads.
#[derive(Debug)]
pub struct IndexedDataset {
    /// Its manifest.
    pub manifest: Manifest,
    /// Its directory.
    pub dir: PathBuf,
    /// Mixing weight.
    pub weight: f64,
}

/// Every row group of every input, and the (dataset, shard) files.
#[derive(Debug)]
pub struct DatasetIndex {
    /// Inputs.
    pub datasets: Vec<IndexedDataset>,
    /// (dataset, shard path) of each shard.
    pub shards: Vec<(usize, PathBuf, String)>,
    /// Row groups in (dataset, shard, row group) order; sample indices number their rows in this order.
    pub row_groups: Vec<RowGroupRef>,
    /// First global sample index of each row group.
    pub first_sample: Vec<u64>,
    verified: Mutex<HashMap<usize, std::result::Result<(), String>>>,
}

/// Where a global sample index lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleLocation {
    /// Row group (index into `row_groups`).
    pub row_group: usize,
    /// Row within it.
    pub row: u32,
}

impl DatasetIndex {
    /// Opens every input (only `image_text.v1` datasets for now) and reads each shard's row-group
    /// sizes from its footer.
    pub fn open(inputs: &[DatasetInput]) -> Result<Self> {
        let mut datasets = Vec::new();
        let mut shards = Vec::new();
        let mut row_groups = Vec::new();
        for input in inputs {
            if !(input.weight >= 0.0 && input.weight.is_finite()) {
                return Err(Error::input(format!(
                    "mixing weight {} of `{}` must be a finite number >= 0",
                    input.weight,
                    input.path.display()
                )));
            }
            for entry in discover_datasets(std::slice::from_ref(&input.path))? {
                if entry.manifest.schema != "image_text.v1" {
                    return Err(Error::input(format!(
                        "`{}` holds {} rows; the loader reads image_text.v1 datasets so far",
                        entry.dir.display(),
                        entry.manifest.schema
                    )));
                }
                let d = datasets.len();
                for shard in &entry.manifest.shards {
                    let path = entry.dir.join(&shard.path);
                    let s = shards.len();
                    let reader = crate::shards::reader::open(&path, &entry.manifest.name)?;
                    for (g, rg) in reader.metadata().row_groups().iter().enumerate() {
                        row_groups.push(RowGroupRef {
                            dataset: d,
                            shard: s,
                            row_group: g,
                            rows: rg.num_rows() as u32,
                        });
                    }
                    shards.push((d, path, shard.blake3.clone()));
                }
                datasets.push(IndexedDataset {
                    manifest: entry.manifest,
                    dir: entry.dir,
                    weight: input.weight,
                });
            }
        }
        if row_groups.is_empty() {
            return Err(Error::input("the loader's inputs hold no rows"));
        }
        let mut first_sample = Vec::with_capacity(row_groups.len());
        let mut n = 0u64;
        for rg in &row_groups {
            first_sample.push(n);
            n += rg.rows as u64;
        }
        Ok(DatasetIndex {
            datasets,
            shards,
            row_groups,
            first_sample,
            verified: Mutex::new(HashMap::new()),
        })
    }

    /// Total samples (all inputs, before weights and exclusions).
    pub fn len(&self) -> u64 {
        self.first_sample.last().copied().unwrap_or(0)
            + self.row_groups.last().map_or(0, |r| r.rows as u64)
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The row group and row of global sample `s`.
    pub fn locate(&self, s: u64) -> SampleLocation {
        let g = self.first_sample.partition_point(|&f| f <= s) - 1;
        SampleLocation {
            row_group: g,
            row: (s - self.first_sample[g]) as u32,
        }
    }

    /// The blocks (row groups as sample ranges) of one epoch after mixing weights and exclusions:
    /// weight `w` repeats every block `floor(w)` times and adds a seeded subset of
    /// `round(frac(w) × rows)` samples of the dataset; excluded samples are left out.
    pub fn epoch_blocks(&self, seed: u64, epoch: u64, excluded: &HashSet<u64>) -> Vec<Block> {
        let mut out = Vec::new();
        for (d, ds) in self.datasets.iter().enumerate() {
            let groups: Vec<usize> = (0..self.row_groups.len())
                .filter(|&g| self.row_groups[g].dataset == d)
                .collect();
            let whole = ds.weight.floor() as usize;
            for _ in 0..whole {
                for &g in &groups {
                    push_runs(
                        &mut out,
                        self.first_sample[g],
                        self.row_groups[g].rows,
                        |_| true,
                        excluded,
                    );
                }
            }
            let frac = ds.weight - ds.weight.floor();
            if frac > 0.0 {
                let rows: u64 = groups.iter().map(|&g| self.row_groups[g].rows as u64).sum();
                let take = (frac * rows as f64).round() as usize;
                let mut all: Vec<u64> = groups
                    .iter()
                    .flat_map(|&g| {
                        self.first_sample[g]..self.first_sample[g] + self.row_groups[g].rows as u64
                    })
                    .collect();
                LoaderRng::new(seed, Purpose::Mixing, epoch, d as u64).shuffle(&mut all);
                let chosen: HashSet<u64> = all.into_iter().take(take).collect();
                for &g in &groups {
                    push_runs(
                        &mut out,
                        self.first_sample[g],
                        self.row_groups[g].rows,
                        |s| chosen.contains(&s),
                        excluded,
                    );
                }
            }
        }
        out
    }

    /// Checks shard `s` against its manifest hash the first time it is touched; an error after that
    /// is remembered, so every reader of the shard sees it.
    pub fn verify_shard(&self, s: usize) -> Result<()> {
        let mut verified = match self.verified.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let result = verified.entry(s).or_insert_with(|| {
            let (_, path, want) = &self.shards[s];
            match crate::shards::reader::file_blake3(path) {
                Ok(got) if &got == want => Ok(()),
                Ok(got) => Err(format!(
                    "shard `{}` does not match its manifest (blake3 {got}, manifest {want}); refusing to read it",
                    path.display()
                )),
                Err(e) => Err(format!("cannot read shard `{}`: {e}", path.display())),
            }
        });
        result.clone().map_err(Error::format)
    }
}

/// An exclusion list file as `mplug leakage --exclusions` writes it.
#[derive(Debug, serde::Deserialize)]
struct ExclusionFile {
    format: String,
    version: u32,
    entries: Vec<ExclusionEntry>,
}

#[derive(Debug, serde::Deserialize)]
struct ExclusionEntry {
    dataset: String,
    id: String,
}

impl DatasetIndex {
    /// The global sample indices an exclusion list (`mplug leakage --exclusions`) names: rows of
    /// the named datasets whose `image_id` is listed. Reads only the id column.
    pub fn excluded_samples(&self, path: &Path) -> Result<HashSet<u64>> {
        let bytes = fs_err::read(path)?;
        let file: ExclusionFile = serde_json::from_slice(&bytes).map_err(|e| {
            Error::input(format!(
                "`{}` is not an exclusion list: {e}",
                path.display()
            ))
        })?;
        if file.format != "mplug.exclusions" || file.version != 1 {
            return Err(Error::input(format!(
                "`{}`: unsupported exclusion list {} v{}",
                path.display(),
                file.format,
                file.version
            )));
        }
        let mut wanted: HashMap<&str, HashSet<&str>> = HashMap::new();
        for e in &file.entries {
            wanted
                .entry(e.dataset.as_str())
                .or_default()
                .insert(e.id.as_str());
        }
        let mut out = HashSet::new();
        for (s, (d, shard_path, _)) in self.shards.iter().enumerate() {
            let Some(ids) = wanted.get(self.datasets[*d].manifest.name.as_str()) else {
                continue;
            };
            let Some(first_group) = self.row_groups.iter().position(|g| g.shard == s) else {
                continue;
            };
            let first = self.first_sample[first_group];
            let dataset = &self.datasets[*d].manifest.name;
            let builder = crate::shards::reader::open(shard_path, dataset)?;
            let mask =
                parquet::arrow::ProjectionMask::columns(builder.parquet_schema(), ["image_id"]);
            let mut row = 0u64;
            let batches = builder.with_projection(mask).build();
            for batch in batches.map_err(|e| unreadable(shard_path, dataset, e))? {
                let batch = batch.map_err(|e| unreadable(shard_path, dataset, e))?;
                let col = arrow::array::AsArray::as_string::<i32>(batch.column(0));
                for i in 0..batch.num_rows() {
                    if ids.contains(col.value(i)) {
                        out.insert(first + row);
                    }
                    row += 1;
                }
            }
        }
        Ok(out)
    }
}

impl DatasetIndex {
    /// The global sample indices of a frozen sample list (`mplug select`): its rows must point into
    /// datasets of this index whose `dataset_blake3` is unchanged since the list was made.
    pub fn listed_samples(&self, path: &Path) -> Result<HashSet<u64>> {
        let bytes = fs_err::read(path)?;
        let list: crate::query::freeze::SampleList =
            serde_json::from_slice(&bytes).map_err(|e| {
                Error::input_caused(format!("`{}` is not a sample list", path.display()), e)
            })?;
        if list.format != crate::query::freeze::SAMPLE_LIST_FORMAT {
            return Err(Error::input(format!(
                "`{}` is not a sample list",
                path.display()
            )));
        }
        let by_table: HashMap<String, usize> = self
            .datasets
            .iter()
            .enumerate()
            .map(|(i, d)| (crate::query::catalog::table_name(&d.manifest.name), i))
            .collect();
        for ld in &list.datasets {
            let Some(&d) = by_table.get(&ld.name) else {
                return Err(Error::input(format!(
                    "sample list `{}` points into dataset `{}`, which is not among the loader's inputs",
                    path.display(),
                    ld.name
                )));
            };
            let have = &self.datasets[d].manifest.dataset_blake3;
            if have != &ld.dataset_blake3 {
                return Err(Error::input(format!(
                    "dataset `{}` changed since the sample list was made (blake3 {have}, list {});                      refusing to resolve its rows",
                    ld.name, ld.dataset_blake3
                )));
            }
        }
        // (dataset, shard path) → first global sample of the shard.
        let mut shard_first: HashMap<(usize, String), u64> = HashMap::new();
        for (g, rg) in self.row_groups.iter().enumerate() {
            if rg.row_group == 0 {
                let d = self.shards[rg.shard].0;
                let rel = self.shards[rg.shard]
                    .1
                    .strip_prefix(&self.datasets[d].dir)
                    .map(|p| p.to_string_lossy().replace('\\', "/"))
                    .unwrap_or_default();
                shard_first.insert((d, rel), self.first_sample[g]);
            }
        }
        let mut out = HashSet::new();
        for r in &list.samples {
            let d = by_table[&r.dataset];
            let Some(first) = shard_first.get(&(d, r.shard.clone())) else {
                return Err(Error::input(format!(
                    "sample list row points into unknown shard `{}` of `{}`",
                    r.shard, r.dataset
                )));
            };
            out.insert(first + r.row);
        }
        Ok(out)
    }
}

/// Appends the runs of consecutive kept samples of one row group as blocks.
fn push_runs(
    out: &mut Vec<Block>,
    first: u64,
    rows: u32,
    keep: impl Fn(u64) -> bool,
    excluded: &HashSet<u64>,
) {
    let mut run: Option<Block> = None;
    for s in first..first + rows as u64 {
        if keep(s) && !excluded.contains(&s) {
            match &mut run {
                Some(b) if b.first + b.len as u64 == s => b.len += 1,
                _ => {
                    if let Some(b) = run.take() {
                        out.push(b);
                    }
                    run = Some(Block { first: s, len: 1 });
                }
            }
        }
    }
    out.extend(run);
}
