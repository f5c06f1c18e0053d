"""Runs SQL in DuckDB over mplug datasets, as an independent oracle for `mplug sql`.

  duckdb_query.py NAME=DATASET_DIR [NAME=DATASET_DIR ...] -- SQL
Each NAME becomes a view over DATASET_DIR/shards/*.parquet. Prints the result as CSV (header + rows).
"""
import csv
import sys

import duckdb

sep = sys.argv.index('--')
con = duckdb.connect()
for spec in sys.argv[1:sep]:
    name, path = spec.split('=', 1)
    con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{path}/shards/*.parquet')")
sql = ' '.join(sys.argv[sep + 1:])
cur = con.execute(sql)
w = csv.writer(sys.stdout, lineterminator='\n')
w.writerow([d[0] for d in cur.description])
for row in cur.fetchall():
    w.writerow(row)
