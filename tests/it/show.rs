//! `mplug show` (issue 24): a contact sheet per schema from the synthetic data, read back as pixels —
//! the tile count equals `--n`, RefCOCO boxes (from the synth's own `instances.json` and refs pickle,
//! read by Python) are drawn around their shape's pixels — and the refusals.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{mplug, ok, python, vocab};

/// The shapes world's colours (src/synth/scene.rs), by the names the expressions use.
const PALETTE: &[(&str, [u8; 3])] = &[
    ("red", [220, 30, 30]),
    ("green", [30, 170, 40]),
    ("blue", [30, 60, 220]),
    ("yellow", [240, 210, 20]),
    ("purple", [140, 40, 170]),
    ("orange", [250, 130, 10]),
];

fn ingest(kind: &str, annotations: &[PathBuf], images: &Path, out: &Path) {
    ok(mplug()
        .args(["ingest", kind, "--quiet", "--annotations"])
        .args(annotations)
        .arg("--images")
        .arg(images)
        .arg("--out")
        .arg(out)
        .arg("--vocab")
        .arg(vocab())
        .output()
        .unwrap());
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

fn show(data: &Path, out: &Path, extra: &[&str]) -> serde_json::Value {
    ok(mplug()
        .arg("show")
        .arg(data)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap());
    serde_json::from_slice(&std::fs::read(out.with_extension("json")).unwrap()).unwrap()
}

/// Whether the PNG region is all white.
fn blank(png: &image::RgbImage, x: u32, y: u32, w: u32, h: u32) -> bool {
    (y..y + h).all(|yy| (x..x + w).all(|xx| png.get_pixel(xx, yy).0 == [255, 255, 255]))
}

/// Reads the sheet back: tile k's image slot has pixels for k < n and is white for the rest of the
/// grid's last row.
fn tiles_drawn(png_path: &Path, layout: &serde_json::Value) -> usize {
    let png = image::open(png_path).unwrap().to_rgb8();
    let (tw, th) = (
        layout["tile_width"].as_u64().unwrap() as u32,
        layout["tile_height"].as_u64().unwrap() as u32,
    );
    let cols = layout["columns"].as_u64().unwrap() as u32;
    let first = &layout["tiles"][0];
    let (x0, y0) = (
        first["x"].as_u64().unwrap() as u32,
        first["y"].as_u64().unwrap() as u32,
    );
    let mut drawn = 0;
    let mut k = 0u32;
    loop {
        let (x, y) = (x0 + (k % cols) * tw, y0 + (k / cols) * th);
        if y + th > png.height() {
            break;
        }
        // the image slot (the tile minus its padding and text)
        if !blank(&png, x, y, tw - 8, th / 2) {
            drawn += 1;
        }
        k += 1;
    }
    drawn
}

fn close(a: [u8; 3], b: [u8; 3], tol: i32) -> bool {
    a.iter()
        .zip(b)
        .all(|(x, y)| (*x as i32 - y as i32).abs() <= tol)
}

/// A sheet for every image schema; the RefCOCO boxes land on their shapes.
#[test]
fn sheets_for_every_schema_with_boxes_on_their_shapes() {
    let t = tempfile::tempdir().unwrap();
    let raw = t.path().join("raw");
    ok(mplug()
        .args(["synth", "--images", "40", "--seed", "5", "--out"])
        .arg(&raw)
        .output()
        .unwrap());
    let data = t.path().join("data");
    ingest(
        "coco",
        &[raw.join("annotations/coco_karpathy_train.json")],
        &raw.join("images"),
        &data.join("coco"),
    );
    ingest(
        "vqa",
        &files_in(&raw.join("vqa")),
        &raw.join("images"),
        &data.join("vqa"),
    );
    ingest(
        "refcoco",
        &files_in(&raw.join("refcoco")),
        &raw.join("refcoco/images"),
        &data.join("refcoco"),
    );
    ingest(
        "snli-ve",
        &files_in(&raw.join("snli_ve")),
        &raw.join("snli_ve/images"),
        &data.join("snli_ve"),
    );
    ingest(
        "nlvr2",
        &files_in(&raw.join("nlvr2")),
        &raw.join("nlvr2/images"),
        &data.join("nlvr2"),
    );
    for (name, n) in [
        ("coco", 7),
        ("vqa", 5),
        ("snli_ve", 4),
        ("nlvr2", 3),
        ("refcoco", 6),
    ] {
        let png = t.path().join(format!("{name}.png"));
        let layout = show(&data.join(name), &png, &["--n", &n.to_string()]);
        assert_eq!(layout["tiles"].as_array().unwrap().len(), n, "{name}");
        assert_eq!(
            tiles_drawn(&png, &layout),
            n,
            "{name}: tiles drawn in the PNG"
        );
    }
    // nlvr2 tiles hold two images each
    let nlvr2: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.path().join("nlvr2.json")).unwrap()).unwrap();
    assert_eq!(nlvr2["tiles"][0]["images"].as_array().unwrap().len(), 2);

    // RefCOCO: every object's box (instances.json) and colour (its first expression in the refs
    // pickle), mapped onto the sheet through the layout, is outlined and holds the shape's colour
    let script = r#"
import json, pickle, sys
refs = pickle.load(open(sys.argv[1], "rb"))
inst = json.load(open(sys.argv[2]))
boxes = {a["id"]: a["bbox"] for a in inst["annotations"]}
sizes = {i["id"]: (i["width"], i["height"]) for i in inst["images"]}
print(json.dumps([{"image_id": str(r["image_id"]), "bbox": boxes[r["ann_id"]],
                   "size": sizes[r["image_id"]], "colour": r["sentences"][0]["sent"].split()[0]}
                  for r in refs]))
"#;
    let objects: serde_json::Value = serde_json::from_str(
        ok(Command::new(python())
            .arg("-c")
            .arg(script)
            .arg(raw.join("refcoco/refs(unc).p"))
            .arg(raw.join("refcoco/instances.json"))
            .output()
            .unwrap())
        .trim(),
    )
    .unwrap();
    let png = image::open(t.path().join("refcoco.png")).unwrap().to_rgb8();
    let layout: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.path().join("refcoco.json")).unwrap()).unwrap();
    let mut checked = 0;
    for tile in layout["tiles"].as_array().unwrap() {
        let img = &tile["images"][0];
        let f = |k: &str| img[k].as_f64().unwrap();
        for o in objects.as_array().unwrap() {
            if o["image_id"] != tile["key"] {
                continue;
            }
            let b: Vec<f64> = serde_json::from_value(o["bbox"].clone()).unwrap();
            let s = f("w") / o["size"][0].as_f64().unwrap();
            let (x0, y0) = (f("x") + b[0] * s, f("y") + b[1] * s);
            let (x1, y1) = (x0 + b[2] * s, y0 + b[3] * s);
            let want = PALETTE
                .iter()
                .find(|(n, _)| *n == o["colour"].as_str().unwrap())
                .map(|(_, c)| *c);
            let Some(want) = want else { continue }; // grayscale images name white/black shapes
            let centre = png
                .get_pixel(((x0 + x1) / 2.0) as u32, ((y0 + y1) / 2.0) as u32)
                .0;
            assert!(
                close(centre, want, 40),
                "{o}: centre {centre:?}, want {want:?}"
            );
            // the outline: the left edge column, between the corners, is not the shape or background
            let edge_x = x0.round() as u32;
            let outline = (y0.ceil() as u32 + 2..y1.floor() as u32 - 2)
                .filter(|&y| {
                    let p = png.get_pixel(edge_x, y).0;
                    [[230, 0, 230], [0, 150, 230], [110, 190, 0], [230, 110, 150]]
                        .iter()
                        .any(|c| close(p, *c, 10))
                })
                .count();
            let span = (y1.floor() - y0.ceil()) as usize - 4;
            assert!(outline * 10 >= span * 9, "{o}: outline {outline} of {span}");
            checked += 1;
        }
    }
    assert!(checked >= 6, "boxes checked: {checked}");

    // --where and --split go through SQL; a seed picks other samples, reproducibly
    let a = show(
        &data.join("refcoco"),
        &t.path().join("a.png"),
        &[
            "--split",
            "train",
            "--where",
            "cardinality(boxes) >= 2",
            "--n",
            "3",
            "--seed",
            "9",
        ],
    );
    let b = show(
        &data.join("refcoco"),
        &t.path().join("b.png"),
        &[
            "--split",
            "train",
            "--where",
            "cardinality(boxes) >= 2",
            "--n",
            "3",
            "--seed",
            "9",
        ],
    );
    assert_eq!(a["tiles"], b["tiles"]);
    let keys = |l: &serde_json::Value| -> Vec<String> {
        l["tiles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["key"].as_str().unwrap().to_string())
            .collect()
    };
    let first = show(
        &data.join("refcoco"),
        &t.path().join("first.png"),
        &[
            "--split",
            "train",
            "--where",
            "cardinality(boxes) >= 2",
            "--n",
            "3",
        ],
    );
    assert_ne!(
        keys(&a),
        keys(&first),
        "a seed draws other samples than the first ones"
    );
    // a frozen sample list (mplug select) restricts the sheet to its samples
    let list = t.path().join("val.json");
    ok(mplug()
        .args(["select", "--data"])
        .arg(data.join("refcoco"))
        .args([
            "--sql",
            "SELECT image_id FROM refcoco WHERE split = 'val'",
            "--out",
        ])
        .arg(&list)
        .output()
        .unwrap());
    let listed: serde_json::Value = serde_json::from_slice(&std::fs::read(&list).unwrap()).unwrap();
    let mut want: Vec<String> = listed["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["image_id"].as_str().unwrap().to_string())
        .collect();
    want.sort();
    let from_list = show(
        &data.join("refcoco"),
        &t.path().join("list.png"),
        &["--samples", list.to_str().unwrap(), "--n", "100"],
    );
    let mut got = keys(&from_list);
    got.sort();
    assert!(!want.is_empty());
    assert_eq!(got, want);
    assert_eq!(
        std::fs::read(t.path().join("a.png")).unwrap(),
        std::fs::read(t.path().join("b.png")).unwrap()
    );

    // refusals: exit 2 with the reason
    let refused = |args: &[&str], want: &str| {
        let out = mplug()
            .arg("show")
            .args(args)
            .arg("--out")
            .arg(t.path().join("refused.png"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(want), "{err}");
        assert!(!t.path().join("refused.png").exists());
    };
    let refcoco = data.join("refcoco");
    let r = refcoco.to_str().unwrap();
    refused(&[r, "--split", "nope"], "is empty");
    refused(&[r, "--where", "no_such_column > 1"], "no_such_column");
    let results = t.path().join("vqa_results.json");
    std::fs::write(&results, r#"[{"question_id": 1, "answer": "yes"}]"#).unwrap();
    refused(
        &[r, "--results", results.to_str().unwrap()],
        "holds vqa results but dataset `refcoco` is image_grounding.v1",
    );
    let v = data.join("vqa");
    std::fs::write(&results, r#"[{"question_id": 99999, "answer": "yes"}]"#).unwrap();
    refused(
        &[v.to_str().unwrap(), "--results", results.to_str().unwrap()],
        "not in dataset `vqa`",
    );
}

/// Predictions beside ground truth: a VQA results file of the majority answers and some wrong ones,
/// `--worst` first; every tile's metric line matches the official per-question accuracy order.
#[test]
fn results_sheet_puts_the_worst_first() {
    let t = tempfile::tempdir().unwrap();
    let raw = t.path().join("raw");
    ok(mplug()
        .args(["synth", "--images", "20", "--seed", "2", "--out"])
        .arg(&raw)
        .output()
        .unwrap());
    let vqa = t.path().join("vqa");
    ingest(
        "vqa",
        &files_in(&raw.join("vqa")),
        &raw.join("images"),
        &vqa,
    );
    let anns: serde_json::Value = serde_json::from_slice(
        &std::fs::read(raw.join("vqa/v2_mscoco_val2014_annotations.json")).unwrap(),
    )
    .unwrap();
    // every third answer wrong
    let results: Vec<serde_json::Value> = anns["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let answer = if i % 3 == 0 {
                "wrong".to_string()
            } else {
                a["multiple_choice_answer"].as_str().unwrap().to_string()
            };
            serde_json::json!({"question_id": a["question_id"], "answer": answer})
        })
        .collect();
    let wrong = results.iter().filter(|r| r["answer"] == "wrong").count();
    let path = t.path().join("results.json");
    std::fs::write(&path, serde_json::to_vec(&results).unwrap()).unwrap();
    let png = t.path().join("worst.png");
    let layout = show(
        &vqa,
        &png,
        &[
            "--results",
            path.to_str().unwrap(),
            "--worst",
            "--n",
            &(wrong + 2).to_string(),
        ],
    );
    let tiles = layout["tiles"].as_array().unwrap();
    assert_eq!(tiles.len(), wrong + 2);
    assert_eq!(tiles_drawn(&png, &layout), wrong + 2);
    let metric = |tile: &serde_json::Value| -> f64 {
        let text: Vec<String> = serde_json::from_value(tile["lines"].clone()).unwrap();
        let joined = text.join(" ");
        let at = joined.rfind("(acc ").unwrap();
        joined[at + 5..].trim_end_matches(')').parse().unwrap()
    };
    for tile in &tiles[..wrong] {
        assert_eq!(metric(tile), 0.0, "{tile}");
    }
    for tile in &tiles[wrong..] {
        assert!(metric(tile) > 0.0, "{tile}");
    }
}

/// A clip per row: the sheet's tiles hold the stored frames (up to 8) of each clip.
#[cfg(feature = "video")]
#[test]
fn video_sheet_shows_frames() {
    let t = tempfile::tempdir().unwrap();
    let raw = t.path().join("raw");
    ok(mplug()
        .args(["synth", "--video", "--clips", "4", "--out"])
        .arg(&raw)
        .output()
        .unwrap());
    let data = t.path().join("msrvtt");
    ok(mplug()
        .args([
            "ingest", "msrvtt", "--quiet", "--frames", "6", "--size", "64", "--out",
        ])
        .arg(&data)
        .arg("--videos")
        .arg(raw.join("msrvtt/videos"))
        .arg("--annotations")
        .arg(raw.join("msrvtt/annotations/train_val_videodatainfo.json"))
        .output()
        .unwrap());
    let png = t.path().join("clips.png");
    let layout = show(&data, &png, &["--n", "3"]);
    let tiles = layout["tiles"].as_array().unwrap();
    assert_eq!(tiles.len(), 3);
    assert_eq!(tiles_drawn(&png, &layout), 3);
    for tile in tiles {
        assert_eq!(tile["images"].as_array().unwrap().len(), 6, "{tile}");
    }
}

/// Grounding results beside the ground truth: a results file whose boxes are the synth's own boxes
/// (from `instances.json`) for half the expressions and shifted by a box width for the rest; with
/// `--worst` the shifted ones (IoU 0) come first, the exact ones show IoU 1.
#[test]
fn grounding_results_sheet_scores_boxes() {
    let t = tempfile::tempdir().unwrap();
    let raw = t.path().join("raw");
    ok(mplug()
        .args(["synth", "--images", "10", "--seed", "4", "--out"])
        .arg(&raw)
        .output()
        .unwrap());
    let data = t.path().join("refcoco");
    ingest(
        "refcoco",
        &files_in(&raw.join("refcoco")),
        &raw.join("refcoco/images"),
        &data,
    );
    let script = r#"
import json, pickle, sys
refs = pickle.load(open(sys.argv[1], "rb"))
boxes = {a["id"]: a["bbox"] for a in json.load(open(sys.argv[2]))["annotations"]}
out = []
for r in refs:
    for s in r["sentences"]:
        x, y, w, h = boxes[r["ann_id"]]
        if s["sent_id"] % 2:
            x += w
        out.append({"image_id": str(r["image_id"]), "sent_id": s["sent_id"], "pred_box": [x, y, w, h]})
print(json.dumps(out))
"#;
    let results = ok(Command::new(python())
        .arg("-c")
        .arg(script)
        .arg(raw.join("refcoco/refs(unc).p"))
        .arg(raw.join("refcoco/instances.json"))
        .output()
        .unwrap());
    let path = t.path().join("grounding_results.json");
    std::fs::write(&path, results.trim()).unwrap();
    let n_results = serde_json::from_str::<serde_json::Value>(results.trim())
        .unwrap()
        .as_array()
        .unwrap()
        .len();
    let png = t.path().join("g.png");
    let layout = show(
        &data,
        &png,
        &[
            "--results",
            path.to_str().unwrap(),
            "--worst",
            "--n",
            &n_results.to_string(),
        ],
    );
    let tiles = layout["tiles"].as_array().unwrap();
    assert_eq!(tiles.len(), n_results);
    assert_eq!(tiles_drawn(&png, &layout), n_results);
    let iou = |tile: &serde_json::Value| -> f64 {
        let text: Vec<String> = serde_json::from_value(tile["lines"].clone()).unwrap();
        let joined = text.join(" ");
        let at = joined.rfind("(IoU ").unwrap();
        joined[at + 5..].trim_end_matches(')').parse().unwrap()
    };
    let shifted = n_results / 2;
    assert!(tiles[..shifted].iter().all(|t| iou(t) == 0.0));
    assert!(tiles[shifted..].iter().all(|t| iou(t) == 1.0));
}
