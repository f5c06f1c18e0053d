//! Per-image cost of the ingest stages, one core: decode only, decode + resize, and the full image
//! stage (hash + decode + orient + resize + encode), on the same files.
//!
//! Images: every `*.jpg` under `$MPLUG_BENCH_IMAGES` (scripts/bench-ingest.sh makes COCO-like crops of
//! real photographs), else 64 synthetic 640x480 JPEGs generated here.
//!
//!   cargo bench --bench decode_resize

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mplug::stages::{ImageOptions, ImageStage, decode_rgb, fit_within, resize_rgb};

fn load_images() -> Vec<Vec<u8>> {
    if let Some(dir) = std::env::var_os("MPLUG_BENCH_IMAGES") {
        let mut files: Vec<PathBuf> = walk(PathBuf::from(dir));
        files.sort();
        files.truncate(200);
        return files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    }
    let dir = tempfile::tempdir().unwrap();
    let opts = mplug::synth::SynthOptions {
        out: dir.path().to_path_buf(),
        seed: 0,
        images: 64,
        size: Some((640, 480)),
        plain_jpeg: true,
    };
    mplug::synth::write_synth_dataset(&opts).unwrap();
    walk(dir.path().join("images"))
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect()
}

fn walk(dir: PathBuf) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(p));
        } else if p.extension().is_some_and(|e| e == "jpg") {
            out.push(p);
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let images = load_images();
    let mut g = c.benchmark_group("ingest_stages");
    g.throughput(Throughput::Elements(images.len() as u64));
    g.sample_size(10);
    g.bench_function("decode/turbojpeg", |b| {
        b.iter(|| {
            for bytes in &images {
                black_box(decode_rgb(bytes, u64::MAX).unwrap());
            }
        })
    });
    g.bench_function("decode_resize/512", |b| {
        b.iter(|| {
            for bytes in &images {
                let img = decode_rgb(bytes, u64::MAX).unwrap();
                let (w, h) = fit_within(img.width, img.height, 512);
                black_box(resize_rgb(&img, w, h));
            }
        })
    });
    let decoded: Vec<_> = images
        .iter()
        .map(|b| decode_rgb(b, u64::MAX).unwrap())
        .collect();
    g.bench_function("resize_only/512", |b| {
        b.iter(|| {
            for img in &decoded {
                let (w, h) = fit_within(img.width, img.height, 512);
                black_box(resize_rgb(img, w, h));
            }
        })
    });
    let stage = ImageStage::new(ImageOptions::default());
    g.bench_function("image_stage/512_jpeg95", |b| {
        b.iter(|| {
            for bytes in &images {
                black_box(stage.process(bytes).unwrap().unwrap());
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
