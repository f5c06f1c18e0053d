//! `mplug doctor`.

use clap::Args;

use crate::device::torch_smoke_test;
use crate::text::BertTokenizer;
use crate::text::tokenizer::default_vocab_path;

#[derive(Debug, Args)]
pub struct DoctorArgs {}

pub fn run(_: DoctorArgs) -> anyhow::Result<()> {
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
    Ok(())
}
