//! How this process was launched: its rank, the world size and where to rendezvous, read from the
//! variables torchrun (`RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR`, `MASTER_PORT`), Slurm's
//! `srun` (`SLURM_PROCID`, `SLURM_STEP_NUM_TASKS`, `SLURM_LOCALID`, `SLURM_JOB_NODELIST`) or
//! `mplug launch` set.

use crate::error::{Error, Result};

/// This process's place in a multi-process job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// Global rank.
    pub rank: usize,
    /// Number of processes.
    pub world: usize,
    /// Rank on this machine: the CUDA device it uses.
    pub local_rank: usize,
    /// Host of rank 0's rendezvous store.
    pub master_addr: String,
    /// Its port.
    pub master_port: u16,
    /// The store is served by the launcher (torchrun's agent store), not by rank 0.
    pub external_store: bool,
    /// Restart attempt (torchrun's `TORCHELASTIC_RESTART_COUNT`): keys of a failed attempt are
    /// not reused.
    pub attempt: u64,
}

/// The Slurm master port when `MASTER_PORT` is unset: derived from the job id so that two jobs
/// sharing a node do not collide (as PyTorch Lightning does).
fn slurm_port(job_id: Option<&str>) -> u16 {
    let id: u64 = job_id.and_then(|j| j.trim().parse().ok()).unwrap_or(0);
    20000 + (id % 10000) as u16
}

/// The first host of a Slurm node list: `gpu[07-09,12],cpu1` → `gpu07`.
pub fn first_slurm_host(list: &str) -> Option<String> {
    let list = list.trim();
    let first_end = {
        // the first top-level comma (not inside brackets) ends the first entry
        let mut depth = 0i32;
        list.char_indices()
            .find(|&(_, c)| {
                match c {
                    '[' => depth += 1,
                    ']' => depth -= 1,
                    _ => {}
                }
                c == ',' && depth == 0
            })
            .map_or(list.len(), |(i, _)| i)
    };
    let entry = &list[..first_end];
    let host = match entry.find('[') {
        None => entry.to_string(),
        Some(open) => {
            let prefix = &entry[..open];
            let inner = entry[open + 1..].trim_end_matches(']');
            let first = inner.split([',', '-']).next()?;
            format!("{prefix}{first}")
        }
    };
    (!host.is_empty()).then_some(host)
}

impl Launch {
    /// From the process environment; `None` when not launched as part of a group.
    pub fn from_env() -> Result<Option<Launch>> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// From any variable lookup (tests).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Launch>> {
        let num = |name: &str| -> Result<Option<usize>> {
            var(name)
                .map(|v| {
                    v.trim().parse::<usize>().map_err(|_| {
                        Error::input(format!("{name}=`{v}` is not a non-negative integer"))
                    })
                })
                .transpose()
        };
        let attempt = num("TORCHELASTIC_RESTART_COUNT")?.unwrap_or(0) as u64;
        let (rank, world, local_rank, addr, port) = if let Some(world) = num("WORLD_SIZE")? {
            let rank =
                num("RANK")?.ok_or_else(|| Error::input("WORLD_SIZE is set but RANK is not"))?;
            let local = num("LOCAL_RANK")?.unwrap_or(rank);
            (rank, world, local, var("MASTER_ADDR"), num("MASTER_PORT")?)
        } else if let Some(world) = num("SLURM_STEP_NUM_TASKS")? {
            // srun's step; the batch script itself (one task) is not a group
            let rank = num("SLURM_PROCID")?.unwrap_or(0);
            let local = num("SLURM_LOCALID")?.unwrap_or(0);
            let addr = var("MASTER_ADDR").or_else(|| {
                var("SLURM_JOB_NODELIST")
                    .or_else(|| var("SLURM_NODELIST"))
                    .and_then(|l| first_slurm_host(&l))
            });
            let port = match num("MASTER_PORT")? {
                Some(p) => Some(p),
                None => Some(slurm_port(var("SLURM_JOB_ID").as_deref()) as usize),
            };
            (rank, world, local, addr, port)
        } else {
            return Ok(None);
        };
        if world == 0 || rank >= world {
            return Err(Error::input(format!(
                "rank {rank} with world size {world}: need 0 <= rank < world size"
            )));
        }
        let master_addr = match addr {
            Some(a) if !a.trim().is_empty() => a.trim().to_string(),
            _ if world == 1 => "127.0.0.1".into(),
            _ => return Err(Error::input("MASTER_ADDR is not set (rank 0's host)")),
        };
        let master_port = match port {
            Some(p) => u16::try_from(p)
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| Error::input(format!("MASTER_PORT={p} is not a TCP port")))?,
            None if world == 1 => 29500,
            None => return Err(Error::input("MASTER_PORT is not set")),
        };
        Ok(Some(Launch {
            rank,
            world,
            local_rank,
            master_addr,
            master_port,
            external_store: var("TORCHELASTIC_USE_AGENT_STORE").as_deref() == Some("True"),
            attempt,
        }))
    }

    /// The address Gloo binds to: loopback for a job on one machine reached over loopback; empty
    /// (torch's default device: this host's name) otherwise.
    pub fn local_host(&self) -> String {
        let loopback = self.master_addr == "localhost"
            || self
                .master_addr
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if loopback {
            "127.0.0.1".into()
        } else {
            String::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn launch(vars: &[(&str, &str)]) -> Result<Option<Launch>> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Launch::from_vars(|k| m.get(k).cloned())
    }

    #[test]
    fn torchrun_variables_make_a_launch() {
        let l = launch(&[
            ("RANK", "3"),
            ("WORLD_SIZE", "8"),
            ("LOCAL_RANK", "1"),
            ("MASTER_ADDR", "node01"),
            ("MASTER_PORT", "29400"),
            ("TORCHELASTIC_USE_AGENT_STORE", "True"),
            ("TORCHELASTIC_RESTART_COUNT", "2"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            l,
            Launch {
                rank: 3,
                world: 8,
                local_rank: 1,
                master_addr: "node01".into(),
                master_port: 29400,
                external_store: true,
                attempt: 2,
            }
        );
        assert_eq!(l.local_host(), "");
    }

    #[test]
    fn slurm_variables_make_a_launch_with_the_first_node_as_master() {
        let l = launch(&[
            ("SLURM_PROCID", "5"),
            ("SLURM_STEP_NUM_TASKS", "16"),
            ("SLURM_LOCALID", "5"),
            ("SLURM_JOB_NODELIST", "gpu[07-08,12],login1"),
            ("SLURM_JOB_ID", "123456"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!((l.rank, l.world, l.local_rank), (5, 16, 5));
        assert_eq!(l.master_addr, "gpu07");
        assert_eq!(l.master_port, 20000 + 3456);
        assert!(!l.external_store);
    }

    #[test]
    fn no_variables_is_no_launch_and_bad_ones_are_errors() {
        assert_eq!(launch(&[]).unwrap(), None);
        assert!(launch(&[("WORLD_SIZE", "2"), ("RANK", "2")]).is_err());
        assert!(launch(&[("WORLD_SIZE", "2")]).is_err());
        assert!(launch(&[("WORLD_SIZE", "2"), ("RANK", "x")]).is_err());
        assert!(launch(&[("WORLD_SIZE", "2"), ("RANK", "0"), ("MASTER_PORT", "1")]).is_err());
        let one = launch(&[("WORLD_SIZE", "1"), ("RANK", "0")])
            .unwrap()
            .unwrap();
        assert_eq!(
            (one.master_addr.as_str(), one.master_port),
            ("127.0.0.1", 29500)
        );
    }

    #[test]
    fn slurm_node_lists_give_their_first_host() {
        assert_eq!(first_slurm_host("node1").as_deref(), Some("node1"));
        assert_eq!(first_slurm_host("a[3-5]").as_deref(), Some("a3"));
        assert_eq!(first_slurm_host("a[003,9]").as_deref(), Some("a003"));
        assert_eq!(first_slurm_host("x1,y[1-2]").as_deref(), Some("x1"));
        assert_eq!(first_slurm_host(""), None);
    }
}
