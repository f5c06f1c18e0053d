//! The `mplug` command: parse the CLI, run it, print errors with their causes and hints.

use std::process::ExitCode;

fn main() -> ExitCode {
    match mplug::cli::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            // Libraries that wrap their own errors (DataFusion) repeat a message down the chain:
            // print each distinct line once.
            let mut last = err.to_string();
            for cause in err.chain().skip(1) {
                let text = cause.to_string();
                if text != last {
                    eprintln!("  Caused by: {text}");
                }
                last = text;
            }
            let lib_err = err.chain().find_map(|e| e.downcast_ref::<mplug::Error>());
            if let Some(hint) = lib_err.and_then(mplug::Error::hint) {
                eprintln!("\nhint: {hint}");
            }
            ExitCode::from(lib_err.map_or(1, mplug::Error::exit_code) as u8)
        }
    }
}
