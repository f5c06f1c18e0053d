//! Helpers shared by the integration test binaries: the binary under test, the repository, and the
//! project venv's Python and the BERT vocab that scripts/setup.sh installs (the tests' oracles).
#![allow(dead_code)] // each test binary uses a subset

use std::path::PathBuf;
use std::process::{Command, Output};

/// The `mplug` binary built for this test run.
pub fn mplug() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mplug"))
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `$MPLUG_PYTHON`, else `.venv/bin/python`; panics with the fix when missing.
pub fn python() -> PathBuf {
    let p = std::env::var_os("MPLUG_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv/bin/python"));
    assert!(
        p.exists(),
        "{} not found: run scripts/setup.sh (or scripts/test.sh) first",
        p.display()
    );
    p
}

/// `$MPLUG_VOCAB`, else the set-up's install location; panics with the fix when missing.
pub fn vocab() -> PathBuf {
    let p = std::env::var_os("MPLUG_VOCAB")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/mplug/bert-base-uncased/vocab.txt")
        });
    assert!(
        p.exists(),
        "vocab {} not found: run scripts/setup.sh first",
        p.display()
    );
    p
}

/// Asserts success and returns stdout.
pub fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "command failed ({:?}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A JPEG of `w` x `h` whose content depends on `token`: a wave whose frequency and phase come
/// from the token, so distinct tokens give distinct images (and distinct dHashes).
pub fn pattern_jpeg(token: &str, w: usize, h: usize) -> Vec<u8> {
    use mplug::stages::{PixelCodec, RgbImage, encode_pixels};
    let seed = token
        .bytes()
        .fold(7u32, |a, b| a.wrapping_mul(31).wrapping_add(b as u32));
    let mut pixels = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            let f = 1.0 + (seed % 7) as f32;
            let phase = (x as f32 / w as f32 * f + (seed % 13) as f32) * std::f32::consts::TAU;
            let v = 127.5 + 127.5 * phase.sin();
            pixels.extend_from_slice(&[v as u8, (y * 255 / h) as u8, (seed >> 8) as u8]);
        }
    }
    let img = RgbImage {
        width: w as u32,
        height: h as u32,
        pixels,
    };
    encode_pixels(&img, PixelCodec::Jpeg, 90).expect("encode test JPEG")
}

/// Writes `pattern_jpeg(token, w, h)` to `path`, creating directories.
pub fn write_jpeg(path: &std::path::Path, token: &str, w: usize, h: usize) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, pattern_jpeg(token, w, h)).expect("write JPEG");
}
