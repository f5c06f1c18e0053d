"""DuckDB side of the SQL benchmark: the same queries as benches/sql_scan.rs on the same shard files,
in-process, best of N runs each (after one warm-up). Threads = all cores, like DataFusion's default.

  duckdb_sql.py DATASET_DIR [--runs 10]
"""
import argparse
import json
import time

import duckdb

QUERIES = [
    ("count_star", "SELECT count(*) AS n FROM t"),
    ("group_by", "SELECT split, count(*) AS n, avg(width) AS w FROM t GROUP BY split"),
    ("filter", "SELECT count(*) AS n FROM t WHERE width > 600 AND split = 'train'"),
    ("list_unnest", "SELECT count(*) AS n FROM (SELECT unnest(captions) AS c FROM t) u WHERE c LIKE '%red%'"),
]
ap = argparse.ArgumentParser()
ap.add_argument('dataset')
ap.add_argument('--runs', type=int, default=10)
a = ap.parse_args()
con = duckdb.connect()
con.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet('{a.dataset}/shards/*.parquet')")
for name, sql in QUERIES:
    con.execute(sql).fetchall()
    times = []
    for _ in range(a.runs):
        t0 = time.perf_counter()
        con.execute(sql).fetchall()
        times.append(time.perf_counter() - t0)
    times.sort()
    print(json.dumps({'query': name, 'best_ms': round(times[0] * 1e3, 2), 'median_ms': round(times[len(times) // 2] * 1e3, 2)}))
