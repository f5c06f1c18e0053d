//! The command line. One file per subcommand; this file holds the top-level parser.

#[cfg(feature = "cluster")]
mod ballista;
mod doctor;
mod download;
mod eval;
mod finetune;
mod ingest;
mod launch;
mod leakage;
mod loader;
mod merge;
mod model;
mod score;
mod show;
mod sql;
mod synth;
mod train;
mod verify;

use clap::{Parser, Subcommand};

/// mplug: reproducible vision-language datasets and the mPLUG model.
///
/// Typical flow:
///   mplug synth --out raw                        # or use your own COCO download
///   mplug ingest coco --annotations raw/annotations/coco_karpathy_train.json --images raw/images --out data/coco
///   mplug verify data/coco
///   mplug synth --video --out raw_video          # MSRVTT / MSVD-QA / VATEX formats
///   mplug ingest msrvtt --annotations raw_video/msrvtt/annotations/train_val_videodatainfo.json \
///                       --videos raw_video/msrvtt/videos --out data/msrvtt
///   mplug ingest cc3m --annotations Train_GCC-training.tsv --images web/cc3m --download --out data/cc3m
///   mplug ingest vqa --annotations v2_*.json --images coco2014 --out data/vqa   # also vg, refcoco, nlvr2, …
///   mplug sql --data data "SELECT split, count(*) FROM coco GROUP BY split"
///   mplug leakage --data data --exclusions data/exclusions.json
///   mplug model info --config configs/mplug_base.yaml
///   mplug train --config configs/pretrain_tiny.yaml --data data/coco --out runs/tiny --device cpu
///   mplug plot runs/tiny
///   mplug show data/coco --split val --n 12 --out sheet.png
///   mplug eval vqa --config configs/vqa_tiny.yaml --weights W --data data/vqa --split val --out eval/vqa
#[derive(Debug, Parser)]
#[command(name = "mplug", version, about, long_about, verbatim_doc_comment)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Turn a raw dataset into Parquet shards + manifest.json.
    #[command(subcommand)]
    Ingest(Box<ingest::IngestCommand>),
    /// Run SQL over every dataset found under --data (interactive without a query).
    Sql(sql::SqlArgs),
    /// Freeze a query's result into a sample list (shard/row references + dataset hashes + SQL).
    Select(sql::SelectArgs),
    /// Recompute every hash and count of a dataset and compare with its manifest.
    Verify(verify::VerifyArgs),
    /// Write the deterministic synthetic datasets: shapes-world images (COCO/Karpathy/ALBEF) or, with
    /// --video, moving-square clips (MSRVTT/MSVD-QA/VATEX).
    Synth(synth::SynthArgs),
    /// Check the installation: libtorch, CUDA, the vocab.
    Doctor(doctor::DoctorArgs),
    Download(download::DownloadArgs),
    Leakage(leakage::LeakageArgs),
    /// The streaming loader (benchmark).
    #[command(subcommand)]
    Loader(loader::LoaderCommand),
    /// Inspect or initialise a model config (parameter counts, keys, fresh weights).
    #[command(subcommand)]
    Model(model::ModelCommand),
    /// Convert a PyTorch checkpoint (.pth) to safetensors with the reference's load-time transforms.
    Convert(model::ConvertArgs),
    /// Run the model (or one module) on tensors from a file and write every named output.
    Forward(model::ForwardArgs),
    Train(train::TrainArgs),
    Finetune(finetune::FinetuneArgs),
    /// Draw a training run's curves (metrics.jsonl) to a PNG.
    Plot(train::PlotArgs),
    /// Score results with the official metrics (VQA; BLEU, ROUGE-L, CIDEr-D; retrieval; grounding).
    #[command(subcommand)]
    Score(score::ScoreCommand),
    /// Evaluate a model on an ingested split: official results file, metrics, summary.
    #[command(subcommand)]
    Eval(eval::EvalCommand),
    /// Draw a contact sheet of a dataset (or of predictions beside ground truth) to a PNG.
    Show(show::ShowArgs),
    Launch(launch::LaunchArgs),
    Merge(merge::MergeArgs),
    /// Start the processes of a Ballista cluster (scheduler, executor) for `mplug sql --cluster`.
    #[cfg(feature = "cluster")]
    #[command(subcommand)]
    Ballista(ballista::BallistaCommand),
}

/// Parses `std::env::args` and runs the command.
pub fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Ingest(cmd) => ingest::run(*cmd),
        Command::Sql(args) => sql::run_sql(args),
        Command::Select(args) => sql::run_select(args),
        Command::Verify(args) => verify::run(args),
        Command::Synth(args) => synth::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Download(args) => download::run(args),
        Command::Leakage(args) => leakage::run(args),
        Command::Loader(cmd) => loader::run(cmd),
        Command::Model(cmd) => model::run_model(cmd),
        Command::Convert(args) => model::run_convert(args),
        Command::Forward(args) => model::run_forward(args),
        Command::Train(args) => train::run_train(args),
        Command::Finetune(args) => finetune::run(args),
        Command::Plot(args) => train::run_plot(args),
        Command::Score(cmd) => score::run(cmd),
        Command::Eval(cmd) => eval::run(cmd),
        Command::Show(args) => show::run(args),
        Command::Launch(args) => launch::run(args),
        Command::Merge(args) => merge::run(args),
        #[cfg(feature = "cluster")]
        Command::Ballista(cmd) => ballista::run(cmd),
    }
}

/// Parses sizes such as `268435456`, `256MiB`, `64M`, `1GiB`, `512k` (binary units).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size (e.g. 268435456, 256MiB, 1GiB)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit `{other}` (use B, KiB, MiB or GiB)"
            ));
        }
    };
    n.checked_mul(mult)
        .filter(|v| *v > 0)
        .ok_or_else(|| format!("`{s}` is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_bytes("1024"), Ok(1024));
        assert_eq!(parse_bytes("256MiB"), Ok(256 << 20));
        assert_eq!(parse_bytes("64M"), Ok(64 << 20));
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        assert!(parse_bytes("12 parsecs").is_err());
        assert!(parse_bytes("0").is_err());
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
