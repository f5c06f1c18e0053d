//! `mplug sql` and `mplug select` against an independent engine (DuckDB, via tests/py/duckdb_query.py)
//! on the same shard files, plus projection pushdown, UDFs, safety and error reporting. SQL
//! behaviour with hand-derived answers is in tests/sql/*.slt (sql_logic.rs).

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::common::{mplug, ok, python, repo};
use std::sync::OnceLock;

/// Two datasets built once for all tests: `coco` (ALBEF lists, 3 shards) and `coco_official`, both
/// of the 40 images of `synth --images 40 --seed 11`.
pub(crate) struct Fixture {
    _dir: tempfile::TempDir,
    /// The data root holding `coco/` and `coco_official/`.
    pub(crate) root: PathBuf,
    raw: PathBuf,
}

pub(crate) fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("raw");
        let root = dir.path().join("data");
        ok(mplug()
            .args(["synth", "--images", "40", "--seed", "11", "--out"])
            .arg(&raw)
            .output()
            .unwrap());
        let ann = raw.join("annotations");
        let albef: Vec<PathBuf> = ["train", "val", "test"]
            .iter()
            .map(|s| ann.join(format!("coco_karpathy_{s}.json")))
            .collect();
        let official = vec![
            ann.join("captions_train2017.json"),
            ann.join("captions_val2017.json"),
        ];
        for (name, files, extra) in [
            ("coco", albef, vec!["--shard-size", "300KiB"]),
            ("coco_official", official, vec![]),
        ] {
            ok(mplug()
                .args(["ingest", "coco", "--quiet", "--name", name, "--annotations"])
                .args(&files)
                .arg("--images")
                .arg(raw.join("images"))
                .arg("--out")
                .arg(root.join(name))
                .args(extra)
                .output()
                .unwrap());
        }
        Fixture {
            _dir: dir,
            root,
            raw,
        }
    })
}

fn mplug_csv(sql: &str) -> String {
    ok(mplug()
        .arg("sql")
        .arg("--data")
        .arg(&fixture().root)
        .args(["--format", "csv", sql])
        .output()
        .unwrap())
}

fn duckdb_csv(sql: &str) -> String {
    let f = fixture();
    let out = Command::new(python())
        .arg(repo().join("tests/py/duckdb_query.py"))
        .arg(format!("coco={}", f.root.join("coco").display()))
        .arg(format!(
            "coco_official={}",
            f.root.join("coco_official").display()
        ))
        .arg("--")
        .arg(sql)
        .output()
        .unwrap();
    ok(out)
}

fn assert_same(mplug_sql: &str, duck_sql: &str) {
    let (a, b) = (mplug_csv(mplug_sql), duckdb_csv(duck_sql));
    let rows = |s: &str| {
        s.lines()
            .skip(1)
            .map(|l| l.trim().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(rows(&a), rows(&b), "mplug:\n{a}\nduckdb:\n{b}");
    assert!(!rows(&a).is_empty());
}

#[test]
fn counts_groupbys_lists_and_joins_match_duckdb() {
    let q = "SELECT count(*) AS n FROM coco";
    assert_same(q, q);
    let q = "SELECT split, count(*) AS n, sum(width) AS w FROM coco GROUP BY split ORDER BY split";
    assert_same(q, q);
    // list columns
    let q = "SELECT image_id, array_length(captions) AS n FROM coco ORDER BY image_id";
    assert_same(q, q);
    let q = "SELECT count(*) FROM (SELECT unnest(captions) AS c FROM coco) t WHERE c LIKE '%red%'";
    assert_same(q, q);
    // nested list: number of tokens of the first caption (DataFusion and DuckDB index lists from 1)
    let q = "SELECT image_id, array_length(caption_tokens[1]) AS n FROM coco ORDER BY image_id LIMIT 10";
    assert_same(q, q);
    // a join between two datasets
    let q = "SELECT a.split AS s, count(*) AS n FROM coco a JOIN coco_official b ON a.source_path = b.source_path \
             GROUP BY a.split ORDER BY s";
    assert_same(q, q);
}

#[test]
fn manifest_tables_describe_the_datasets() {
    let out = mplug_csv("SELECT name, images, captions, shards FROM datasets ORDER BY name");
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture().root.join("coco/manifest.json")).unwrap())
            .unwrap();
    let t = &m["totals"];
    let expected = format!(
        "coco,{},{},{}",
        t["images_written"], t["captions_written"], t["shards"]
    );
    assert!(
        out.lines().any(|l| l == expected),
        "{out}\nexpected {expected}"
    );
    let shards =
        mplug_csv("SELECT count(*) AS n, sum(rows) AS r FROM shards WHERE dataset = 'coco'");
    assert_eq!(
        shards.lines().nth(1).unwrap(),
        format!("{},{}", t["shards"], t["images_written"])
    );
    let rejects = mplug_csv("SELECT count(*) AS n FROM rejects");
    assert_eq!(rejects.lines().nth(1).unwrap(), "0");
}

/// Projection pushdown, shown with DataFusion's own scan metric against the file sizes on disk:
/// metadata-only queries read a small fraction of the bytes; a query of the pixels reads them.
#[test]
fn queries_without_pixels_do_not_read_pixel_bytes() {
    use mplug::query::session::sum_metric;
    let f = fixture();
    let datasets = mplug::query::discover_datasets(&[f.root.join("coco")]).unwrap();
    let total: u64 = datasets[0].manifest.shards.iter().map(|s| s.bytes).sum();
    let session = mplug::query::QuerySession::new(datasets, Default::default(), None).unwrap();
    let (_, plan) = session
        .query_with_plan("SELECT split, count(*), avg(width) FROM coco GROUP BY split")
        .unwrap();
    let meta_bytes = sum_metric(&plan, "bytes_scanned") as u64;
    let (_, plan) = session.query_with_plan("SELECT image FROM coco").unwrap();
    let pixel_bytes = sum_metric(&plan, "bytes_scanned") as u64;
    assert!(
        meta_bytes > 0 && meta_bytes * 20 < total,
        "metadata query read {meta_bytes} of {total} bytes"
    );
    assert!(
        pixel_bytes * 10 > total * 8,
        "pixel query read only {pixel_bytes} of {total} bytes"
    );
}

#[test]
fn udfs_work_in_where_clauses() {
    // hash_split and its complement partition the table
    let a = mplug_csv("SELECT count(*) FROM coco WHERE hash_split(image_id, 0.3)");
    let b = mplug_csv("SELECT count(*) FROM coco WHERE NOT hash_split(image_id, 0.3)");
    let n = |s: &str| s.lines().nth(1).unwrap().parse::<u64>().unwrap();
    assert_eq!(n(&a) + n(&b), 40);
    assert!(n(&a) > 0 && n(&b) > 0);
    // stable: hash_unit of a key equals the definition computed here with blake3 directly
    let out = mplug_csv("SELECT hash_unit('coco_7') AS u");
    let h = blake3::hash(b"coco_7");
    let want = (u64::from_le_bytes(h.as_bytes()[..8].try_into().unwrap()) >> 11) as f64
        / (1u64 << 53) as f64;
    let got: f64 = out.lines().nth(1).unwrap().parse().unwrap();
    assert!((got - want).abs() < 1e-12, "{got} vs {want}");

    // token_count equals Hugging Face tokenizers on the reference pre_caption
    let out = mplug_csv(
        "SELECT c, token_count(c) AS n FROM (SELECT unnest(captions) AS c FROM coco) t ORDER BY c LIMIT 8",
    );
    let vocab = std::env::var("MPLUG_VOCAB").unwrap_or_else(|_| {
        format!(
            "{}/.cache/mplug/bert-base-uncased/vocab.txt",
            std::env::var("HOME").unwrap()
        )
    });
    let mut rdr: Vec<(String, String)> = Vec::new();
    for line in out.lines().skip(1) {
        let (c, n) = line.rsplit_once(',').unwrap();
        rdr.push((c.trim_matches('"').to_string(), n.to_string()));
    }
    let script = r#"
import sys, json
from tokenizers import BertWordPieceTokenizer
sys.path.insert(0, sys.argv[2])
from check_dataset import pre_caption
t = BertWordPieceTokenizer(sys.argv[1], lowercase=True)
for c in json.load(sys.stdin):
    print(len(t.encode(pre_caption(c, 10**6), add_special_tokens=False).ids))
"#;
    let mut child = Command::new(python())
        .args(["-c", script])
        .arg(&vocab)
        .arg(repo().join("tests/py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let caps: Vec<&String> = rdr.iter().map(|(c, _)| c).collect();
    std::io::Write::write_all(
        child.stdin.as_mut().unwrap(),
        serde_json::to_string(&caps).unwrap().as_bytes(),
    )
    .unwrap();
    let py = ok(child.wait_with_output().unwrap());
    let want: Vec<&str> = py.lines().collect();
    let got: Vec<&str> = rdr.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(got, want);
}

/// Error output is pinned in cli.rs (`sql_errors_say_where_and_what_to_do`); this checks the
/// refusals leave nothing behind and that EXPLAIN is not mistaken for a write.
#[test]
fn writes_are_refused_and_explain_is_not_a_write() {
    let outside = fixture().raw.join("annotations");
    let ddl = format!(
        "CREATE EXTERNAL TABLE x STORED AS PARQUET LOCATION '{}'",
        outside.display()
    );
    let out = mplug()
        .arg("sql")
        .arg("--data")
        .arg(&fixture().root)
        .arg(&ddl)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = mplug_csv("EXPLAIN SELECT split, count(*) FROM coco GROUP BY split");
    assert!(
        out.contains("plan_type") && out.contains("Aggregate"),
        "{out}"
    );
}

#[test]
fn frozen_sample_lists_are_reproducible_and_resolve_to_the_right_rows() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let sql = "SELECT image_id FROM coco WHERE split = 'train' AND hash_split(image_id, 0.5)";
    let mut outs = Vec::new();
    for name in ["a.json", "b.json"] {
        let out = dir.path().join(name);
        ok(mplug()
            .args(["select", "--data"])
            .arg(f.root.join("coco"))
            .args(["--sql", sql, "--out"])
            .arg(&out)
            .output()
            .unwrap());
        outs.push(std::fs::read(&out).unwrap());
    }
    assert_eq!(outs[0], outs[1], "same query, same data, different bytes");
    let list: serde_json::Value = serde_json::from_slice(&outs[0]).unwrap();
    assert_eq!(list["sql"], sql);
    assert_eq!(
        list["sql_blake3"],
        blake3::hash(sql.as_bytes()).to_hex().to_string()
    );
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.root.join("coco/manifest.json")).unwrap()).unwrap();
    assert_eq!(list["datasets"][0]["dataset_blake3"], m["dataset_blake3"]);
    let samples = list["samples"].as_array().unwrap();
    assert!(!samples.is_empty());
    assert_eq!(list["count"].as_u64().unwrap() as usize, samples.len());
    // every (shard, row) reference holds that image_id, read back with pyarrow
    let script = r#"
import sys, json, pyarrow.parquet as pq
l = json.load(open(sys.argv[1]))
for s in l['samples']:
    t = pq.read_table(sys.argv[2] + '/' + s['shard'], columns=['image_id', 'split'])
    r = t.slice(s['row'], 1).to_pylist()[0]
    assert r['image_id'] == s['image_id'] and r['split'] == 'train', (s, r)
print('ok')
"#;
    let out = Command::new(python())
        .args(["-c", script])
        .arg(dir.path().join("a.json"))
        .arg(f.root.join("coco"))
        .output()
        .unwrap();
    assert_eq!(ok(out).trim(), "ok");

    // with two datasets registered, the query must say which dataset each row comes from
    let out = mplug()
        .args(["select", "--data"])
        .arg(&f.root)
        .args(["--sql", sql, "--out"])
        .arg(dir.path().join("c.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("dataset"));
}

#[test]
fn interactive_mode_reads_statements_until_semicolon() {
    let home = tempfile::tempdir().unwrap();
    let mut child = mplug()
        .arg("sql")
        .arg("--data")
        .arg(&fixture().root)
        .env("HOME", home.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input = "SELECT count(*) AS n\n FROM coco;\nSELEC oops;\nSELECT 40 + 2 AS answer;\n\\q\n";
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        stdout.contains("| 40 ") && stdout.contains("| 42 "),
        "{stdout}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("error:"),
        "the bad statement is reported and skipped"
    );
}

/// A dataset whose every input was rejected still answers queries (an empty table) and its rejects
/// are queryable.
#[test]
fn a_dataset_with_no_rows_is_an_empty_table() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    let ann = dir.path().join("coco_karpathy_train.json");
    std::fs::write(
        &ann,
        r#"[{"image": "gone.jpg", "caption": "a missing picture", "image_id": "x"}]"#,
    )
    .unwrap();
    let root = dir.path().join("data");
    ok(mplug()
        .args([
            "ingest",
            "coco",
            "--quiet",
            "--name",
            "empty",
            "--annotations",
        ])
        .arg(&ann)
        .arg("--images")
        .arg(&images)
        .arg("--out")
        .arg(root.join("empty"))
        .output()
        .unwrap());
    let q = |sql: &str| {
        ok(mplug()
            .arg("sql")
            .arg("--data")
            .arg(&root)
            .args(["--format", "csv", sql])
            .output()
            .unwrap())
    };
    assert_eq!(
        q("SELECT count(*) AS n FROM empty").lines().nth(1),
        Some("0")
    );
    let r = q("SELECT sample_id, stage, unit, reason FROM rejects");
    assert_eq!(
        r.lines().nth(1),
        Some("x,path,image,missing image file"),
        "{r}"
    );
}
