//! `mplug doctor`.

use clap::Args;

use crate::device::torch_smoke_test;
use crate::text::BertTokenizer;
use crate::text::tokenizer::default_vocab_path;

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Check the process group instead: join it (torchrun's / Slurm's / `mplug launch`'s
    /// variables), run every collective on known tensors and time an all-reduce; one JSON line per
    /// rank. Try `mplug launch --nproc 2 -- mplug doctor --collectives`.
    #[arg(long)]
    collectives: bool,
    /// Device of the tensors for --collectives: cpu, cuda (cuda:LOCAL_RANK) or auto.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Bytes all-reduced for the bandwidth figure of --collectives.
    #[arg(long, default_value = "64MiB", value_parser = super::parse_bytes)]
    bytes: u64,
}

pub fn run(a: DoctorArgs) -> anyhow::Result<()> {
    if a.collectives {
        return collectives(&a);
    }
    let t = torch_smoke_test()?;
    println!(
        "libtorch  ok (matmul max abs err {:.2e}, {} threads); CUDA {} ({} device(s))",
        t.matmul_max_abs_err,
        t.threads,
        if t.cuda { "available" } else { "not available" },
        t.cuda_devices
    );
    match default_vocab_path().map(|p| (BertTokenizer::from_vocab_file(&p), p)) {
        Some((Ok(tok), p)) => println!(
            "vocab     ok ({} entries, {})",
            tok.vocab_size(),
            p.display()
        ),
        Some((Err(e), _)) => println!("vocab     MISSING: {e}"),
        None => println!("vocab     MISSING: set MPLUG_VOCAB"),
    }
    println!(
        "dist      {} (mplug launch --nproc 2 -- mplug doctor --collectives checks a group)",
        match (cfg!(feature = "dist"), crate::train::dist::NCCL_BUILT) {
            (true, true) => "c10d: Gloo and NCCL",
            (true, false) =>
                "c10d: Gloo (built against a CPU libtorch or without CUDA headers: no NCCL)",
            (false, _) => "not built (feature `dist` off): one process only",
        }
    );
    Ok(())
}

fn collectives(a: &DoctorArgs) -> anyhow::Result<()> {
    let device = super::train::rank_device(&a.device)?;
    let group = crate::train::dist::join_from_env(device, &Default::default())?;
    let report = crate::train::dist::self_check::check(group.as_ref(), device, a.bytes as usize)?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
