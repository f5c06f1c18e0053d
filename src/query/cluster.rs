//! SQL on an Apache DataFusion Ballista cluster (cargo feature `cluster`): `mplug sql --cluster
//! df://HOST:PORT` plans on the client as the in-process session does (the same tables, found the
//! same way, and the same functions), then hands the plan to a Ballista scheduler whose executors
//! run it. `mplug ballista scheduler` and `mplug ballista executor` are Ballista's own processes
//! with mplug's functions (`hash_split`, `hash_unit`, `token_count`) registered, so plans that call
//! them deserialize and run there.
//!
//! Table discovery happens on the client: each dataset is a Parquet listing of its shard files,
//! and the plan names those files by path, so every executor must see the datasets at the same
//! paths (a shared file system, as with Slurm). The manifest tables (`datasets`, `shards`,
//! `rejects`) travel inside the plan.

use std::sync::Arc;

use ballista::prelude::{SessionConfigExt, SessionContextExt};
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_core::utils::default_session_builder;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::registry::FunctionRegistry;
use datafusion::prelude::{SessionConfig, SessionContext};

use super::memtable_codec::MemTableCodec;
use super::session::map_df_error;
use super::udf::mplug_udfs;
use crate::error::{Error, Result};
use crate::text::BertTokenizer;

/// A client session whose queries run on the cluster at `url` (`df://HOST:PORT`; Ballista reads
/// only the host and port, 50050 when none is given).
pub async fn remote_context(
    url: &str,
    config: SessionConfig,
    runtime: Arc<RuntimeEnv>,
) -> Result<SessionContext> {
    let state = SessionStateBuilder::new()
        .with_default_features()
        .with_config(
            config.with_ballista_logical_extension_codec(Arc::new(MemTableCodec::default())),
        )
        .with_runtime_env(runtime)
        .build();
    SessionContext::remote_with_state(url, state)
        .await
        .map_err(|e| Error::input(format!("--cluster {url}: {e}")))
}

/// The session Ballista's scheduler and executors build for each job: Ballista's default, plus
/// mplug's functions.
fn session_with_udfs(
    config: SessionConfig,
    tokenizer: Option<Arc<BertTokenizer>>,
) -> datafusion::common::Result<SessionState> {
    let mut state = default_session_builder(config)?;
    for udf in mplug_udfs(tokenizer) {
        state.register_udf(Arc::new(udf))?;
    }
    Ok(state)
}

/// Where a scheduler listens and how soon it gives up on a silent executor.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// Address to bind.
    pub bind_host: String,
    /// gRPC port (clients and executors).
    pub port: u16,
    /// An executor without a heartbeat for this long is dead: its tasks fail over or the job fails.
    pub executor_timeout_s: u64,
}

/// Runs a scheduler until the process is stopped.
pub async fn run_scheduler(
    opts: SchedulerOptions,
    tokenizer: Option<Arc<BertTokenizer>>,
) -> Result<()> {
    let config = SchedulerConfig {
        bind_host: opts.bind_host.clone(),
        external_host: opts.bind_host.clone(),
        bind_port: opts.port,
        executor_timeout_seconds: opts.executor_timeout_s,
        expire_dead_executor_interval_seconds: (opts.executor_timeout_s / 4).max(1),
        no_executors_grace_period_seconds: opts.executor_timeout_s,
        override_logical_codec: Some(Arc::new(MemTableCodec::default())),
        override_session_builder: Some(Arc::new(move |config| {
            session_with_udfs(config, tokenizer.clone())
        })),
        ..SchedulerConfig::default()
    };
    let addr = format!("{}:{}", opts.bind_host, opts.port)
        .parse()
        .map_err(|e| Error::input(format!("scheduler address: {e}")))?;
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(|e| Error::internal(format!("Ballista scheduler: {e}")))?;
    start_server(cluster, addr, Arc::new(config))
        .await
        .map_err(|e| Error::input(format!("Ballista scheduler on {addr}: {e}")))
}

/// Where an executor listens, which scheduler it serves and how much it runs at once.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// The scheduler's host.
    pub scheduler_host: String,
    /// The scheduler's port.
    pub scheduler_port: u16,
    /// Address to bind (and to advertise to the scheduler and the other executors).
    pub bind_host: String,
    /// Arrow Flight port (shuffle and result fetches).
    pub port: u16,
    /// gRPC port.
    pub grpc_port: u16,
    /// Tasks run at once (0: one per core).
    pub concurrent_tasks: usize,
    /// Shuffle files (default: a temporary folder).
    pub work_dir: Option<String>,
    /// Heartbeat interval; the scheduler's `--executor-timeout` must be longer.
    pub heartbeat_s: u64,
    /// How long to wait for the scheduler to accept connections (job arrays start executors and
    /// the scheduler at the same time).
    pub scheduler_wait_s: u64,
}

/// Waits until the scheduler accepts TCP connections, or `wait_s` has passed.
async fn wait_for_scheduler(host: &str, port: u16, wait_s: u64) -> Result<()> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(wait_s);
    let mut said = false;
    loop {
        if tokio::net::TcpStream::connect((host, port)).await.is_ok() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::input_with_hint(
                format!("no Ballista scheduler answered at {host}:{port} within {wait_s} s"),
                "start `mplug ballista scheduler` there first, or check --scheduler (and --scheduler-wait)",
            ));
        }
        if !said {
            eprintln!("waiting for the scheduler at {host}:{port} (up to {wait_s} s)");
            said = true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// Runs an executor until the process is stopped (Ctrl-C / SIGINT stops it gracefully).
pub async fn run_executor(
    opts: ExecutorOptions,
    tokenizer: Option<Arc<BertTokenizer>>,
) -> Result<()> {
    wait_for_scheduler(
        &opts.scheduler_host,
        opts.scheduler_port,
        opts.scheduler_wait_s,
    )
    .await?;
    let state = session_with_udfs(SessionConfig::new(), tokenizer).map_err(map_df_error)?;
    let config = ExecutorProcessConfig {
        scheduler_host: opts.scheduler_host,
        scheduler_port: opts.scheduler_port,
        bind_host: opts.bind_host.clone(),
        external_host: Some(opts.bind_host),
        port: opts.port,
        grpc_port: opts.grpc_port,
        vcores: opts.concurrent_tasks,
        work_dir: opts.work_dir,
        executor_heartbeat_interval_seconds: opts.heartbeat_s,
        print_thread_info: false,
        override_function_registry: Some(Arc::new(BallistaFunctionRegistry::from(&state))),
        ..ExecutorProcessConfig::default()
    };
    start_executor_process(Arc::new(config))
        .await
        .map_err(|e| Error::input(format!("Ballista executor: {e}")))
}
