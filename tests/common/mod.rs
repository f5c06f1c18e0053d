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

/// A JPEG of `w` x `h` whose content depends on `token`: a 12x9 grid of cells whose brightness
/// and colour come from a hash of (token, cell), so distinct tokens give distinct images (and
/// distinct dHashes), and re-encoded copies keep their structure.
pub fn pattern_jpeg(token: &str, w: usize, h: usize) -> Vec<u8> {
    use mplug::stages::{PixelCodec, RgbImage, encode_pixels};
    let cell = |cx: usize, cy: usize| -> [u8; 3] {
        let mut x = token.bytes().fold(0xcbf2_9ce4_8422_2325u64, |a, b| {
            (a ^ b as u64).wrapping_mul(0x100_0000_01b3)
        });
        x ^= (cx as u64) << 32 | cy as u64;
        x = x.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        x ^= x >> 29;
        [(x >> 8) as u8, (x >> 16) as u8, (x >> 24) as u8]
    };
    let mut pixels = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            pixels.extend_from_slice(&cell(x * 12 / w, y * 9 / h));
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

/// `mplug synth` of `images` images (seed `seed`) under `dir/raw`, then `mplug ingest coco` of its
/// Karpathy train list into `dir/coco` with small row groups and 96 px images; returns `dir/coco`.
pub fn synth_coco_dataset(dir: &std::path::Path, images: usize, seed: u64) -> PathBuf {
    let raw = dir.join("raw");
    ok(mplug()
        .args([
            "synth",
            "--images",
            &images.to_string(),
            "--seed",
            &seed.to_string(),
            "--out",
        ])
        .arg(&raw)
        .output()
        .expect("run mplug synth"));
    let data = dir.join("coco");
    ok(mplug()
        .args(["ingest", "coco", "--quiet", "--annotations"])
        .arg(raw.join("annotations/coco_karpathy_train.json"))
        .arg("--images")
        .arg(raw.join("images"))
        .arg("--out")
        .arg(&data)
        .arg("--vocab")
        .arg(vocab())
        .args(["--row-group-size", "40KiB", "--max-side", "96"])
        .output()
        .expect("run mplug ingest"));
    data
}
