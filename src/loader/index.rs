//! What the loader can read: the row groups of one or more shard sets, their samples (rows, or
//! the questions of each row: [`SampleKind`]) numbered into one global sample index, with
//! per-dataset mixing weights and an exclusion list applied, and each shard's hash checked against
//! its manifest the first time it is read.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::order::Block;
use super::rng::{LoaderRng, Purpose};
use super::sample::SampleKind;
use crate::error::{Error, Result};
use crate::shards::Manifest;
use crate::shards::catalog::discover_datasets;
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
    /// Samples in the row group (= rows unless a row holds several).
    pub items: u32,
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
    /// Per row group with several samples per row: the first sample of each row within the group,
    /// and the group's sample count last (`rows + 1` entries).
    pub item_offsets: Vec<Option<Vec<u32>>>,
    /// What a sample is.
    pub kind: SampleKind,
    verified: Mutex<HashMap<usize, std::result::Result<(), String>>>,
}

/// Where a global sample index lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleLocation {
    /// Row group (index into `row_groups`).
    pub row_group: usize,
    /// Row within it.
    pub row: u32,
    /// Sample within the row (0 when a row is one sample).
    pub item: u32,
}

impl DatasetIndex {
    /// Opens every input as `image_text.v1` caption samples ([`Self::open_kind`]).
    pub fn open(inputs: &[DatasetInput]) -> Result<Self> {
        Self::open_kind(inputs, SampleKind::Caption)
    }

    /// Opens every input, which must hold `kind`'s schema, reads each shard's row-group sizes
    /// from its footer and, when a row holds several samples, their counts (one list column).
    pub fn open_kind(inputs: &[DatasetInput], kind: SampleKind) -> Result<Self> {
        let mut datasets = Vec::new();
        let mut shards = Vec::new();
        let mut row_groups = Vec::new();
        let mut item_offsets = Vec::new();
        for input in inputs {
            if !(input.weight >= 0.0 && input.weight.is_finite()) {
                return Err(Error::input(format!(
                    "mixing weight {} of `{}` must be a finite number >= 0",
                    input.weight,
                    input.path.display()
                )));
            }
            for entry in discover_datasets(std::slice::from_ref(&input.path))? {
                if entry.manifest.schema != kind.schema() {
                    return Err(Error::input_with_hint(
                        format!(
                            "`{}` holds {} rows; this task reads {} datasets",
                            entry.dir.display(),
                            entry.manifest.schema,
                            kind.schema()
                        ),
                        "pass --data the datasets `mplug ingest` wrote for this task",
                    ));
                }
                let d = datasets.len();
                for shard in &entry.manifest.shards {
                    let path = entry.dir.join(&shard.path);
                    let s = shards.len();
                    let reader = crate::shards::reader::open(&path, &entry.manifest.name)?;
                    let counts = match kind.items_column() {
                        Some(col) => Some(items_per_row(&path, &entry.manifest.name, col)?),
                        None => None,
                    };
                    let mut next_row = 0usize;
                    for (g, rg) in reader.metadata().row_groups().iter().enumerate() {
                        let rows = rg.num_rows() as usize;
                        let offsets = match &counts {
                            Some(c) => {
                                let Some(c) = c.get(next_row..next_row + rows) else {
                                    return Err(Error::format(format!(
                                        "`{}`: row groups hold more rows than its column `{}`",
                                        path.display(),
                                        kind.items_column().unwrap_or_default()
                                    )));
                                };
                                let mut o = Vec::with_capacity(rows + 1);
                                let mut n = 0u32;
                                for &k in c {
                                    o.push(n);
                                    n += k;
                                }
                                o.push(n);
                                Some(o)
                            }
                            None => None,
                        };
                        next_row += rows;
                        row_groups.push(RowGroupRef {
                            dataset: d,
                            shard: s,
                            row_group: g,
                            rows: rows as u32,
                            items: offsets
                                .as_ref()
                                .and_then(|o| o.last().copied())
                                .unwrap_or(rows as u32),
                        });
                        item_offsets.push(offsets);
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
            n += rg.items as u64;
        }
        if n == 0 {
            return Err(Error::input(format!(
                "the loader's inputs hold no {} samples",
                kind.schema()
            )));
        }
        Ok(DatasetIndex {
            datasets,
            shards,
            row_groups,
            first_sample,
            item_offsets,
            kind,
            verified: Mutex::new(HashMap::new()),
        })
    }

    /// Total samples (all inputs, before weights and exclusions).
    pub fn len(&self) -> u64 {
        self.first_sample.last().copied().unwrap_or(0)
            + self.row_groups.last().map_or(0, |r| r.items as u64)
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The row group, row and item of global sample `s`.
    pub fn locate(&self, s: u64) -> SampleLocation {
        // the last group starting at or before s that holds samples (empty groups share a start)
        let g = self.first_sample.partition_point(|&f| f <= s) - 1;
        let at = (s - self.first_sample[g]) as u32;
        match &self.item_offsets[g] {
            None => SampleLocation {
                row_group: g,
                row: at,
                item: 0,
            },
            Some(o) => {
                let row = o.partition_point(|&f| f <= at) - 1;
                SampleLocation {
                    row_group: g,
                    row: row as u32,
                    item: at - o[row],
                }
            }
        }
    }

    /// The global samples of row `row` of row group `g`.
    pub fn row_samples(&self, g: usize, row: u32) -> std::ops::Range<u64> {
        let first = self.first_sample[g];
        match &self.item_offsets[g] {
            None => first + row as u64..first + row as u64 + 1,
            Some(o) => first + o[row as usize] as u64..first + o[row as usize + 1] as u64,
        }
    }

    /// The global samples of each row of shard `s`, in stored order.
    fn shard_rows(&self, s: usize) -> Vec<std::ops::Range<u64>> {
        let mut out = Vec::new();
        for (g, rg) in self.row_groups.iter().enumerate() {
            if rg.shard == s {
                out.extend((0..rg.rows).map(|r| self.row_samples(g, r)));
            }
        }
        out
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
                        self.row_groups[g].items,
                        |_| true,
                        excluded,
                    );
                }
            }
            let frac = ds.weight - ds.weight.floor();
            if frac > 0.0 {
                let rows: u64 = groups
                    .iter()
                    .map(|&g| self.row_groups[g].items as u64)
                    .sum();
                let take = (frac * rows as f64).round() as usize;
                let mut all: Vec<u64> = groups
                    .iter()
                    .flat_map(|&g| {
                        self.first_sample[g]..self.first_sample[g] + self.row_groups[g].items as u64
                    })
                    .collect();
                LoaderRng::new(seed, Purpose::Mixing, epoch, d as u64).shuffle(&mut all);
                let chosen: HashSet<u64> = all.into_iter().take(take).collect();
                for &g in &groups {
                    push_runs(
                        &mut out,
                        self.first_sample[g],
                        self.row_groups[g].items,
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
            let rows = self.shard_rows(s);
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
                    if ids.contains(col.value(i))
                        && let Some(r) = rows.get(row as usize)
                    {
                        out.extend(r.clone());
                    }
                    row += 1;
                }
            }
        }
        Ok(out)
    }
}

impl DatasetIndex {
    /// The global samples of rows whose `split` is not `split` (to exclude: fine-tuning reads the
    /// train split of datasets that hold every split). Reads only the split column; an error when
    /// no row has the split, naming the splits there are.
    pub fn samples_outside_split(&self, split: &str) -> Result<HashSet<u64>> {
        let mut out = HashSet::new();
        let mut seen = std::collections::BTreeSet::new();
        let mut kept = 0u64;
        for (s, (d, shard_path, _)) in self.shards.iter().enumerate() {
            let rows = self.shard_rows(s);
            let dataset = &self.datasets[*d].manifest.name;
            let builder = crate::shards::reader::open(shard_path, dataset)?;
            let mask = parquet::arrow::ProjectionMask::columns(builder.parquet_schema(), ["split"]);
            let mut row = 0usize;
            let batches = builder.with_projection(mask).build();
            for batch in batches.map_err(|e| unreadable(shard_path, dataset, e))? {
                let batch = batch.map_err(|e| unreadable(shard_path, dataset, e))?;
                let col = arrow::compute::cast(batch.column(0), &arrow::datatypes::DataType::Utf8)?;
                let col = arrow::array::AsArray::as_string::<i32>(&col);
                for i in 0..batch.num_rows() {
                    let Some(r) = rows.get(row) else {
                        break;
                    };
                    if col.value(i) == split {
                        kept += r.end - r.start;
                    } else {
                        seen.insert(col.value(i).to_string());
                        out.extend(r.clone());
                    }
                    row += 1;
                }
            }
        }
        if kept == 0 {
            return Err(Error::input(format!(
                "no sample of the inputs is in split `{split}` (their splits: {})",
                seen.into_iter().collect::<Vec<_>>().join(", ")
            )));
        }
        Ok(out)
    }

    /// The global sample indices of a frozen sample list (`mplug select`): its rows must point into
    /// datasets of this index whose `dataset_blake3` is unchanged since the list was made.
    pub fn listed_samples(&self, path: &Path) -> Result<HashSet<u64>> {
        let list = crate::shards::sample_list::read_list(path)?;
        let by_table: HashMap<String, usize> = self
            .datasets
            .iter()
            .enumerate()
            .map(|(i, d)| (crate::shards::catalog::table_name(&d.manifest.name), i))
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
        // (dataset, shard path) → shard index.
        let mut shard_of: HashMap<(usize, String), usize> = HashMap::new();
        for (s, (d, path, _)) in self.shards.iter().enumerate() {
            let rel = path
                .strip_prefix(&self.datasets[*d].dir)
                .map(|p| p.to_string_lossy().replace('\\', "/"))
                .unwrap_or_default();
            shard_of.insert((*d, rel), s);
        }
        let mut rows_of: HashMap<usize, Vec<std::ops::Range<u64>>> = HashMap::new();
        let mut out = HashSet::new();
        for r in &list.samples {
            let d = by_table[&r.dataset];
            let Some(&s) = shard_of.get(&(d, r.shard.clone())) else {
                return Err(Error::input(format!(
                    "sample list row points into unknown shard `{}` of `{}`",
                    r.shard, r.dataset
                )));
            };
            let rows = rows_of.entry(s).or_insert_with(|| self.shard_rows(s));
            let Some(range) = rows.get(r.row as usize) else {
                return Err(Error::input(format!(
                    "sample list row {} is past the end of shard `{}` of `{}`",
                    r.row, r.shard, r.dataset
                )));
            };
            out.extend(range.clone());
        }
        Ok(out)
    }
}

/// The length of list column `column` in every row of a shard, in stored order.
fn items_per_row(path: &Path, dataset: &str, column: &str) -> Result<Vec<u32>> {
    let builder = crate::shards::reader::open(path, dataset)?;
    let mask = parquet::arrow::ProjectionMask::columns(builder.parquet_schema(), [column]);
    let mut out = Vec::new();
    let batches = builder
        .with_projection(mask)
        .build()
        .map_err(|e| unreadable(path, dataset, e))?;
    for batch in batches {
        let batch = batch.map_err(|e| unreadable(path, dataset, e))?;
        let Some(list) = batch.column_by_name(column) else {
            return Err(Error::format(format!(
                "`{}` lacks column `{column}`",
                path.display()
            )));
        };
        let list = arrow::array::AsArray::as_list::<i32>(list);
        out.extend(list.offsets().windows(2).map(|w| (w[1] - w[0]) as u32));
    }
    Ok(out)
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
