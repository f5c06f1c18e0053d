//! `mplug show`: a contact sheet of a dataset, or of predictions beside ground truth.

use std::path::PathBuf;

use clap::Args;

use crate::show::{ShowOptions, show};

/// Draw a contact sheet (PNG) of a dataset's samples: images or a clip's frames with their captions,
/// questions and weighted answers, expressions with their boxes in colour, statements with labels.
///
/// With --results, predictions beside the ground truth (a VQA or caption results file from
/// `mplug eval` or the original code), each with its per-sample metric; --worst puts the lowest
/// first. The layout (which tile shows which sample, where each image landed) is written next to
/// the PNG as JSON.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The dataset directory.
    data: PathBuf,
    /// Only this split.
    #[arg(long)]
    split: Option<String>,
    /// A SQL predicate over the dataset's columns (as in `mplug sql`), e.g.
    /// "cardinality(captions) > 4".
    #[arg(long = "where", value_name = "PREDICATE")]
    where_: Option<String>,
    /// A sample list from `mplug select`: only its samples of this dataset.
    #[arg(long, value_name = "LIST")]
    samples: Option<PathBuf>,
    /// Tiles at most.
    #[arg(long, default_value_t = 24)]
    n: usize,
    /// Pick the samples at random with this seed [default: the first ones, in stored order].
    #[arg(long)]
    seed: Option<u64>,
    /// A results file (`[{question_id, answer}]` or `[{image_id, caption}]`) to show beside the
    /// ground truth.
    #[arg(long, value_name = "FILE")]
    results: Option<PathBuf>,
    /// With --results: the lowest per-sample metric first.
    #[arg(long, requires = "results")]
    worst: bool,
    /// The PNG to write.
    #[arg(long, value_name = "PNG")]
    out: PathBuf,
}

/// Runs `mplug show`.
pub fn run(a: ShowArgs) -> anyhow::Result<()> {
    let opts = ShowOptions {
        data: a.data,
        split: a.split,
        where_: a.where_,
        samples: a.samples,
        n: a.n,
        seed: a.seed,
        results: a.results,
        worst: a.worst,
        out: a.out.clone(),
    };
    let layout = show(&opts)?;
    println!(
        "wrote {} ({} tiles, {}x{} px; layout in {})",
        a.out.display(),
        layout.tiles.len(),
        layout.width,
        layout.height,
        a.out.with_extension("json").display()
    );
    Ok(())
}
