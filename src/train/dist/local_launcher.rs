//! `mplug launch`: N ranks of one command on this machine, as `torchrun --standalone
//! --nproc-per-node N` does, without Python. Every rank gets torchrun's variables; the first rank
//! that fails (non-zero exit or a signal) is named and the others are stopped, so a job never
//! hangs on a dead peer.
//!
//! Each rank runs in a process group of its own, so stopping a rank also stops what it started
//! (a shell's children); SIGINT/SIGTERM sent to the launcher are passed on to every rank.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// What to launch.
#[derive(Debug, Clone)]
pub struct LocalLaunch {
    /// Processes (ranks).
    pub nproc: usize,
    /// Rendezvous port on 127.0.0.1 (`None`: a free one).
    pub master_port: Option<u16>,
    /// How long the others get to stop after SIGTERM before SIGKILL.
    pub grace: Duration,
    /// The program and its arguments.
    pub command: Vec<OsString>,
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exited with status {c}"),
        (None, Some(s)) => format!("was killed by signal {s}"),
        _ => "ended".into(),
    }
}

/// A free TCP port on loopback (bound and released: the small race is torchrun's too).
fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(l.local_addr()?.port())
}

/// A signal the launcher received (0: none), to pass on to the ranks.
static RECEIVED: AtomicI32 = AtomicI32::new(0);

extern "C" fn remember(sig: libc::c_int) {
    RECEIVED.store(sig, Ordering::SeqCst);
}

fn catch_stop_signals() {
    let handler: extern "C" fn(libc::c_int) = remember;
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores into an atomic (async-signal-safe).
        unsafe {
            libc::signal(sig, handler as libc::sighandler_t);
        }
    }
}

/// `sig` to the rank's whole process group.
fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on the group of a child we spawned (its pid is the group id) and have not
    // reaped.
    unsafe {
        libc::kill(-(child.id() as i32), sig);
    }
}

/// Runs the ranks; `Ok` when every rank exits 0, else the first failure, named.
pub fn run(l: &LocalLaunch) -> Result<()> {
    let (program, args) = l
        .command
        .split_first()
        .ok_or_else(|| Error::input("mplug launch: no command after `--`"))?;
    if l.nproc == 0 {
        return Err(Error::input("--nproc must be at least 1"));
    }
    let port = match l.master_port {
        Some(p) => p,
        None => free_port()?,
    };
    // As torchrun: ranks sharing a machine do not each take every core for libtorch's threads.
    let omp_threads = std::env::var_os("OMP_NUM_THREADS").is_none().then(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        (cores / l.nproc).max(1).to_string()
    });
    catch_stop_signals();
    let mut children: Vec<Option<Child>> = Vec::with_capacity(l.nproc);
    for rank in 0..l.nproc {
        let mut command = Command::new(program);
        if let Some(n) = &omp_threads {
            command.env("OMP_NUM_THREADS", n);
        }
        let spawned = command
            .args(args)
            .env("RANK", rank.to_string())
            .env("LOCAL_RANK", rank.to_string())
            .env("WORLD_SIZE", l.nproc.to_string())
            .env("LOCAL_WORLD_SIZE", l.nproc.to_string())
            .env("MASTER_ADDR", "127.0.0.1")
            .env("MASTER_PORT", port.to_string())
            .process_group(0)
            .spawn();
        match spawned {
            Ok(c) => children.push(Some(c)),
            Err(e) => {
                stop(&mut children, l.grace);
                return Err(Error::input_caused(
                    format!("cannot start `{}`", program.to_string_lossy()),
                    e,
                ));
            }
        }
    }
    let mut failure: Option<(usize, String)> = None;
    while children.iter().any(Option::is_some) {
        for (rank, slot) in children.iter_mut().enumerate() {
            let Some(child) = slot else { continue };
            if let Some(status) = child.try_wait()? {
                *slot = None;
                if !status.success() && failure.is_none() {
                    failure = Some((rank, describe(status)));
                }
            }
        }
        let received = RECEIVED.load(Ordering::SeqCst);
        if received != 0 && failure.is_none() {
            failure = Some((
                0,
                format!("was stopped: the launcher received signal {received}"),
            ));
        }
        if failure.is_some() {
            stop(&mut children, l.grace);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    match failure {
        None => Ok(()),
        Some((rank, what)) => Err(Error::Collective {
            op: "launch",
            rank,
            world: l.nproc,
            message: format!("{what}; the other ranks were stopped"),
        }),
    }
}

/// SIGTERM to every running rank, SIGKILL to those still running after `grace`; reaps all.
fn stop(children: &mut [Option<Child>], grace: Duration) {
    for c in children.iter().flatten() {
        signal(c, libc::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        let running = children
            .iter_mut()
            .flatten()
            .any(|c| matches!(c.try_wait(), Ok(None)));
        if !running {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for c in children.iter_mut().flatten() {
        if matches!(c.try_wait(), Ok(None)) {
            signal(c, libc::SIGKILL);
        }
        let _ = c.wait();
    }
}
