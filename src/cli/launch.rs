//! `mplug launch`.

use std::ffi::OsString;
use std::time::Duration;

use clap::Args;

use crate::train::dist::local_launcher::{self, LocalLaunch};

/// Run N ranks of a command on this machine: data-parallel training without Python's torchrun
///
/// Every rank gets torchrun's variables (RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE,
/// MASTER_ADDR=127.0.0.1, MASTER_PORT; OMP_NUM_THREADS = cores / N unless set); `mplug train`, `mplug finetune` and `mplug doctor
/// --collectives` join a c10d process group from them. When a rank fails, the launcher names it,
/// stops the others (SIGTERM, then SIGKILL after --grace) and exits non-zero.
///
///   mplug launch --nproc 2 -- mplug doctor --collectives
///   mplug launch --nproc 8 -- mplug finetune vqa --config configs/vqa_mplug_base.yaml ... --device cuda
///
/// Several machines: use torchrun or Slurm's srun (see README), which set the same variables.
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct LaunchArgs {
    /// Processes to start (one per GPU; each uses cuda:LOCAL_RANK).
    #[arg(long)]
    nproc: usize,
    /// Rendezvous port on 127.0.0.1 [default: a free port].
    #[arg(long)]
    master_port: Option<u16>,
    /// Seconds the other ranks get to stop after one failed, before SIGKILL.
    #[arg(long, default_value_t = 10.0)]
    grace: f64,
    /// The command every rank runs, after `--`.
    #[arg(last = true, required = true, num_args = 1..)]
    command: Vec<OsString>,
}

pub fn run(a: LaunchArgs) -> anyhow::Result<()> {
    if !(a.grace.is_finite() && a.grace >= 0.0) {
        anyhow::bail!("--grace must be a non-negative number of seconds");
    }
    local_launcher::run(&LocalLaunch {
        nproc: a.nproc,
        master_port: a.master_port,
        grace: Duration::from_secs_f64(a.grace),
        command: a.command,
    })?;
    Ok(())
}
