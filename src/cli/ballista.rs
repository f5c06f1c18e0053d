//! `mplug ballista scheduler|executor`: the processes of an Apache DataFusion Ballista cluster,
//! with mplug's SQL functions registered, for `mplug sql --cluster df://HOST:PORT`.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};

use crate::query::cluster::{ExecutorOptions, SchedulerOptions, run_executor, run_scheduler};
use crate::text::BertTokenizer;
use crate::text::tokenizer::default_vocab_path;

/// The cluster's processes.
#[derive(Debug, Subcommand)]
pub enum BallistaCommand {
    /// Start a scheduler: it plans the stages of the queries clients send and hands tasks to the
    /// executors that registered with it.
    Scheduler(SchedulerArgs),
    /// Start an executor: it registers with the scheduler and runs tasks (reading the datasets'
    /// shards by the paths the client saw, so mount them at the same paths on every machine).
    Executor(ExecutorArgs),
}

/// `mplug ballista scheduler`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example (one scheduler, two executors on this machine, then a query):
  mplug ballista scheduler --port 50050 &
  mplug ballista executor --scheduler localhost:50050 --port 50051 --grpc-port 50052 &
  mplug ballista executor --scheduler localhost:50050 --port 50053 --grpc-port 50054 &
  mplug sql --data data --cluster df://localhost:50050 \"SELECT split, count(*) FROM coco GROUP BY split\""
)]
pub struct SchedulerArgs {
    /// Address to bind (0.0.0.0 for every interface).
    #[arg(long, default_value = "127.0.0.1")]
    bind: String,
    /// gRPC port for clients and executors.
    #[arg(long, default_value_t = 50050)]
    port: u16,
    /// Seconds without a heartbeat after which an executor is dead (its tasks are retried on others
    /// or its jobs fail); longer than the executors' --heartbeat.
    #[arg(long, value_name = "S", default_value_t = 180)]
    executor_timeout: u64,
    /// BERT vocab for token_count() [default: $MPLUG_VOCAB, else ~/.cache/mplug/bert-base-uncased/vocab.txt]
    #[arg(long, value_name = "FILE")]
    vocab: Option<PathBuf>,
}

/// `mplug ballista executor`.
#[derive(Debug, Args)]
pub struct ExecutorArgs {
    /// The scheduler, HOST:PORT.
    #[arg(long, value_name = "HOST:PORT", default_value = "localhost:50050")]
    scheduler: String,
    /// Address to bind and to advertise to the scheduler and the other executors.
    #[arg(long, default_value = "127.0.0.1")]
    bind: String,
    /// Arrow Flight port (results and shuffle data).
    #[arg(long, default_value_t = 50051)]
    port: u16,
    /// gRPC port.
    #[arg(long, default_value_t = 50052)]
    grpc_port: u16,
    /// Tasks run at once (0: one per core).
    #[arg(long, default_value_t = 0)]
    concurrent_tasks: usize,
    /// Folder for shuffle files [default: a temporary folder].
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// Seconds between heartbeats to the scheduler.
    #[arg(long, value_name = "S", default_value_t = 60)]
    heartbeat: u64,
    /// Seconds to wait for the scheduler to come up before giving up.
    #[arg(long, value_name = "S", default_value_t = 60)]
    scheduler_wait: u64,
    /// BERT vocab for token_count() [default: $MPLUG_VOCAB, else ~/.cache/mplug/bert-base-uncased/vocab.txt]
    #[arg(long, value_name = "FILE")]
    vocab: Option<PathBuf>,
}

/// The vocab if there is one: token_count() reports a missing vocab when called.
fn tokenizer(vocab: &Option<PathBuf>) -> Option<Arc<BertTokenizer>> {
    vocab
        .clone()
        .or_else(default_vocab_path)
        .filter(|p| p.exists())
        .and_then(|p| BertTokenizer::from_vocab_file(&p).ok())
        .map(Arc::new)
}

/// Runs the process until it is stopped.
pub fn run(cmd: BallistaCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cmd {
        BallistaCommand::Scheduler(a) => {
            let opts = SchedulerOptions {
                bind_host: a.bind,
                port: a.port,
                executor_timeout_s: a.executor_timeout,
            };
            eprintln!(
                "Ballista scheduler on {}:{} (mplug functions registered)",
                opts.bind_host, opts.port
            );
            runtime.block_on(run_scheduler(opts, tokenizer(&a.vocab)))?;
        }
        BallistaCommand::Executor(a) => {
            let (host, port) = a.scheduler.rsplit_once(':').ok_or_else(|| {
                crate::error::Error::input(format!(
                    "--scheduler {}: expected HOST:PORT",
                    a.scheduler
                ))
            })?;
            let scheduler_port = port.parse().map_err(|_| {
                crate::error::Error::input(format!("--scheduler {}: bad port", a.scheduler))
            })?;
            let opts = ExecutorOptions {
                scheduler_host: host.to_string(),
                scheduler_port,
                bind_host: a.bind,
                port: a.port,
                grpc_port: a.grpc_port,
                concurrent_tasks: a.concurrent_tasks,
                work_dir: a.work_dir.map(|p| p.to_string_lossy().into_owned()),
                heartbeat_s: a.heartbeat,
                scheduler_wait_s: a.scheduler_wait,
            };
            eprintln!(
                "Ballista executor on {}:{} for the scheduler at {}",
                opts.bind_host, opts.port, a.scheduler
            );
            runtime.block_on(run_executor(opts, tokenizer(&a.vocab)))?;
        }
    }
    Ok(())
}
