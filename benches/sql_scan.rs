//! SQL over ≥ 1M metadata rows, in-process: a group-by, a filter, and a list-column scan.
//! The DuckDB side of the comparison is benches/duckdb_sql.py on the same files (scripts/bench-sql.sh).
//!
//!   MPLUG_BENCH_SQL_DATA=DIR cargo bench --bench sql_scan     (DIR from benches/make_sql_bench.py)

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use mplug::query::{QuerySession, discover_datasets};

/// The queries, shared with benches/duckdb_sql.py (same text, table `t`).
pub const QUERIES: [(&str, &str); 4] = [
    ("count_star", "SELECT count(*) AS n FROM t"),
    (
        "group_by",
        "SELECT split, count(*) AS n, avg(width) AS w FROM t GROUP BY split",
    ),
    (
        "filter",
        "SELECT count(*) AS n FROM t WHERE width > 600 AND split = 'train'",
    ),
    (
        "list_unnest",
        "SELECT count(*) AS n FROM (SELECT unnest(captions) AS c FROM t) u WHERE c LIKE '%red%'",
    ),
];

fn bench(c: &mut Criterion) {
    let Some(dir) = std::env::var_os("MPLUG_BENCH_SQL_DATA") else {
        eprintln!("sql_scan: set MPLUG_BENCH_SQL_DATA (see scripts/bench-sql.sh); skipping");
        return;
    };
    let datasets = discover_datasets(&[PathBuf::from(dir)]).unwrap();
    assert_eq!(
        datasets[0].table, "t",
        "benches/make_sql_bench.py names the dataset `t`"
    );
    let session = QuerySession::new(datasets, Default::default(), None).unwrap();
    let mut g = c.benchmark_group("sql_scan");
    g.sample_size(10);
    for (name, sql) in QUERIES {
        g.bench_function(format!("mplug/{name}"), |b| {
            b.iter(|| black_box(session.query(sql).unwrap()))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
