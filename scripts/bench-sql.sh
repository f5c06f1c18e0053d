#!/usr/bin/env bash
# SQL over 1M metadata rows: mplug (DataFusion, release, in-process via criterion) vs DuckDB
# (in-process, Python) on the same Parquet files, same machine, one run.
#
#   scripts/bench-sql.sh [ROWS]     (default 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS="${1:-1000000}"
scripts/setup.sh >/dev/null
# shellcheck source=/dev/null
source .mplug-env
WORK="${MPLUG_BENCH_DIR:-$HOME/.cache/mplug/bench}/sql_$ROWS"
[ -f "$WORK/manifest.json" ] || "$MPLUG_PYTHON" benches/make_sql_bench.py --out "$WORK" --rows "$ROWS"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "data: $ROWS rows, $(du -sh "$WORK/shards" | cut -f1) of Parquet in 4 shards"
echo "== DuckDB $("$MPLUG_PYTHON" -c 'import duckdb; print(duckdb.__version__)')"
"$MPLUG_PYTHON" benches/duckdb_sql.py "$WORK"
echo "== mplug (DataFusion 55, release)"
MPLUG_BENCH_SQL_DATA="$WORK" cargo bench --quiet --bench sql_scan 2>/dev/null | grep -E "^sql_scan|time:"
