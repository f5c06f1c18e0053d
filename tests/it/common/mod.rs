//! Helpers shared by the integration test modules: the binary under test, the repository, and the
//! project venv's Python and the BERT vocab that scripts/setup.sh installs (the tests' oracles).
#![allow(dead_code)] // not every helper is used by every build (the `video` feature)

pub mod http;

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

/// `mplug synth --images N --seed S --out raw`; returns `raw`.
pub fn synth_raw(raw: &std::path::Path, images: usize, seed: u64) -> PathBuf {
    ok(mplug()
        .args([
            "synth",
            "--images",
            &images.to_string(),
            "--seed",
            &seed.to_string(),
            "--out",
        ])
        .arg(raw)
        .output()
        .expect("run mplug synth"));
    raw.to_path_buf()
}

/// `mplug ingest WHAT` of every annotation file directly in `annotations` (a folder of the
/// synthetic task formats: `raw/vqa`, `raw/snli_ve`, `raw/nlvr2`) with `--images images`, into
/// `out`, with `extra` flags; returns `out`.
pub fn ingest_folder(
    what: &str,
    annotations: &std::path::Path,
    images: &std::path::Path,
    out: &std::path::Path,
    extra: &[&str],
) -> PathBuf {
    let mut files: Vec<PathBuf> = std::fs::read_dir(annotations)
        .expect("annotation folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    ok(mplug()
        .args(["ingest", what, "--quiet", "--annotations"])
        .args(&files)
        .arg("--images")
        .arg(images)
        .arg("--out")
        .arg(out)
        .arg("--vocab")
        .arg(vocab())
        .args(extra)
        .output()
        .expect("run mplug ingest"));
    out.to_path_buf()
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

/// A standard-normal tensor drawn from its own seeded generator, not libtorch's global one: the
/// tests share one process, so another test's draw can land between `tch::manual_seed` and the
/// draw that follows it (CI saw two "identical" input files differ that way).
pub fn seeded_randn(shape: &[i64], seed: u64) -> tch::Tensor {
    // the synthetic world's seeded generator
    let mut rng = mplug::synth::rng::SynthRng::new(seed, 0);
    let n: i64 = shape.iter().product();
    let values: Vec<f32> = (0..n)
        .map(|_| {
            // Box-Muller; 1 - unit() lies in (0, 1], so the logarithm stays finite
            let (u, v) = (1.0 - rng.unit(), rng.unit());
            ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
        })
        .collect();
    tch::Tensor::from_slice(&values).view(shape)
}

/// Runs the calling test alone in a fresh process of this test binary: a test that counts the
/// process's threads would see other tests' threads in the shared binary.
///
/// Returns `true` in that child (run the body); in the parent it runs the child, asserts it
/// passed and returns `false`. `name` is the test's path (`loader_shutdown::create_and_drop…`).
pub fn in_own_process(name: &str) -> bool {
    const VAR: &str = "MPLUG_TEST_OWN_PROCESS";
    if std::env::var(VAR).as_deref() == Ok(name) {
        return true;
    }
    let out = Command::new(std::env::current_exe().expect("the test binary's path"))
        .args([name, "--exact", "--test-threads=1", "--nocapture"])
        .env(VAR, name)
        .output()
        .expect("re-run the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{name} in its own process failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    false
}

/// The whole exchange of a finished command, as the CLI snapshots record it (uv style): exit
/// status, stdout and stderr.
pub fn exchange(out: &Output) -> String {
    format!(
        "success: {}\nexit_code: {}\n----- stdout -----\n{}\n----- stderr -----\n{}",
        out.status.success(),
        out.status
            .code()
            .map_or("none".to_string(), |c| c.to_string()),
        String::from_utf8_lossy(&out.stdout).trim_end(),
        String::from_utf8_lossy(&out.stderr).trim_end()
    )
}

/// insta settings for CLI snapshots: `dir` (a test's temp dir) becomes `[TEMP]`, and what changes
/// from run to run (hashes, timings, sizes) is masked. Counts stay: each snapshot's fixture fixes them.
pub fn snapshot_settings(dir: &std::path::Path) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path(repo().join("tests/it/snapshots"));
    s.set_prepend_module_to_snapshot(false);
    s.set_omit_expression(true);
    let canonical = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    for d in [canonical, dir.to_path_buf()] {
        s.add_filter(&regex_escape(&d.display().to_string()), "[TEMP]");
    }
    s.add_filter(r"blake3:[0-9a-f]{64}", "blake3:[HASH]");
    s.add_filter(r"\d+\.\d+ s \(\d+\.\d+ ", "[SECS] s ([RATE] ");
    s.add_filter(r"\d+\.\d+ MiB", "[SIZE] MiB");
    s
}

/// `s` with regex metacharacters escaped.
fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
