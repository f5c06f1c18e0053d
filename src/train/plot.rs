//! `mplug plot RUN_DIR`: the curves of `metrics.jsonl` as one PNG (losses, learning rates,
//! throughput and loader starvation, ITM/MLM accuracy), drawn with plotters into an RGB buffer.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::error::{Error, Result};

/// Where the sans-serif font is looked for (`MPLUG_FONT` first; `mplug plot` and `mplug show`).
const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

pub fn register_font() -> Result<()> {
    static DONE: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        let candidates: Vec<PathBuf> = std::env::var_os("MPLUG_FONT")
            .map(PathBuf::from)
            .into_iter()
            .chain(FONT_PATHS.iter().map(PathBuf::from))
            .collect();
        let path = candidates.iter().find(|p| p.is_file()).ok_or_else(|| {
            "no TrueType font found: install fonts-dejavu-core (scripts/setup.sh does) or set MPLUG_FONT"
                .to_string()
        })?;
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        // plotters keeps the font for the process: leak it once.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
            .map_err(|_| format!("{} is not a usable font", path.display()))
    })
    .clone()
    .map_err(Error::input)
}

/// Columns of `metrics.jsonl` by name: (step, value) pairs, finite values only.
pub fn read_series(path: &Path, names: &[&str]) -> Result<Vec<Vec<(f64, f64)>>> {
    let text = fs_err::read_to_string(path)?;
    let mut out = vec![Vec::new(); names.len()];
    for (n, line) in text.lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| Error::format_caused(format!("{} line {}", path.display(), n + 1), e))?;
        let Some(step) = v.get("step").and_then(|s| s.as_f64()) else {
            continue;
        };
        for (k, name) in names.iter().enumerate() {
            if let Some(y) = v.get(*name).and_then(|y| y.as_f64())
                && y.is_finite()
            {
                out[k].push((step, y));
            }
        }
    }
    Ok(out)
}

/// At most `n` points: means of consecutive buckets (long runs are noisy per step, and thousands
/// of segments draw badly).
fn bucket_means(s: &[(f64, f64)], n: usize) -> Vec<(f64, f64)> {
    if s.len() <= n {
        return s.to_vec();
    }
    let per = s.len().div_ceil(n);
    s.chunks(per)
        .map(|c| {
            let k = c.len() as f64;
            (
                c.iter().map(|p| p.0).sum::<f64>() / k,
                c.iter().map(|p| p.1).sum::<f64>() / k,
            )
        })
        .collect()
}

fn compact(v: f64) -> String {
    if v != 0.0 && v.abs() < 1e-2 {
        format!("{v:.1e}")
    } else {
        format!("{v:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

fn panel(
    area: &Area<'_>,
    title: &str,
    series: &[(&str, Vec<(f64, f64)>)],
    log_y: bool,
) -> Result<()> {
    let err = |e: String| Error::internal_caused(format!("plot `{title}`"), e);
    let pts: Vec<(f64, f64)> = series.iter().flat_map(|(_, s)| s.iter().copied()).collect();
    if pts.is_empty() {
        return Ok(());
    }
    let (x0, x1) = pts
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (y0, y1) = pts
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
    let pad = ((y1 - y0) * 0.05).max(1e-12);
    let mut chart = ChartBuilder::on(area);
    chart
        .caption(title, ("sans-serif", 20))
        .margin(8)
        .x_label_area_size(30)
        .y_label_area_size(60);
    let colors = [BLUE, RED, GREEN, MAGENTA, CYAN, BLACK];
    macro_rules! draw {
        ($chart:expr) => {{
            let mut c = $chart;
            c.configure_mesh()
                .x_desc("step")
                .y_label_formatter(&|v: &f64| compact(*v))
                .label_style(("sans-serif", 12))
                .draw()
                .map_err(|e| err(e.to_string()))?;
            for (k, (name, s)) in series.iter().enumerate() {
                let color = colors[k % colors.len()];
                c.draw_series(LineSeries::new(bucket_means(s, 400), color.stroke_width(1)))
                    .map_err(|e| err(e.to_string()))?
                    .label(*name)
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(1))
                    });
            }
            c.configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .label_font(("sans-serif", 12))
                .draw()
                .map_err(|e| err(e.to_string()))?;
        }};
    }
    if log_y && y0 > 0.0 {
        draw!(
            chart
                .build_cartesian_2d(x0..x1, (y0 * 0.9..y1 * 1.1).log_scale())
                .map_err(|e| err(e.to_string()))?
        );
    } else {
        draw!(
            chart
                .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))
                .map_err(|e| err(e.to_string()))?
        );
    }
    Ok(())
}

/// Draws `run_dir/metrics.jsonl` to `out` (PNG, 1400×1000).
pub fn plot_run(run_dir: &Path, out: &Path) -> Result<()> {
    let metrics = run_dir.join("metrics.jsonl");
    if !metrics.is_file() {
        return Err(Error::input(format!(
            "`{}` has no metrics.jsonl (is it a run directory of mplug train?)",
            run_dir.display()
        )));
    }
    register_font()?;
    let names = [
        "loss",
        "loss_itc",
        "loss_itm",
        "loss_mlm",
        "loss_prefix",
        "lr",
        "lr_visual",
        "samples_per_s",
        "loader_starved_pct",
        "itm_acc",
        "mlm_acc",
        "loss_vqa",
        "loss_caption",
        "loss_snli_ve",
        "loss_nlvr2",
    ];
    let s = read_series(&metrics, &names)?;
    if s[0].is_empty() {
        return Err(Error::input(format!(
            "`{}` holds no steps yet",
            metrics.display()
        )));
    }
    let (w, h) = (1400u32, 1000u32);
    let mut buf = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE)
            .map_err(|e| Error::internal_caused("plot", e))?;
        let areas = root.split_evenly((2, 2));
        let take = |k: usize| (names[k], s[k].clone());
        panel(
            &areas[0],
            "losses",
            &[
                take(0),
                take(1),
                take(2),
                take(3),
                take(4),
                take(11),
                take(12),
                take(13),
                take(14),
            ],
            false,
        )?;
        panel(&areas[1], "learning rate", &[take(5), take(6)], true)?;
        panel(
            &areas[2],
            "throughput (samples/s) and loader starved %",
            &[take(7), take(8)],
            false,
        )?;
        let eval = run_dir.join("eval.jsonl");
        let held = if eval.is_file() {
            read_series(
                &eval,
                &[
                    "itc_r1_i2t",
                    "itc_r1_t2i",
                    "itm_acc",
                    "mlm_acc",
                    "itc_r1_chance",
                ],
            )?
        } else {
            Vec::new()
        };
        if held.first().is_some_and(|h| !h.is_empty()) {
            let names = [
                "ITC R@1 i2t",
                "ITC R@1 t2i",
                "ITM acc",
                "MLM acc",
                "R@1 chance",
            ];
            let series: Vec<(&str, Vec<(f64, f64)>)> = names.iter().copied().zip(held).collect();
            panel(&areas[3], "held-out (eval.jsonl)", &series, false)?;
        } else {
            panel(
                &areas[3],
                "accuracy (training batches)",
                &[take(9), take(10)],
                false,
            )?;
        }
        root.present()
            .map_err(|e| Error::internal_caused("plot", e))?;
    }
    let img =
        image::RgbImage::from_raw(w, h, buf).ok_or_else(|| Error::internal("plot buffer size"))?;
    img.save(out)
        .map_err(|e| Error::internal(format!("writing {}: {e}", out.display())))?;
    Ok(())
}
