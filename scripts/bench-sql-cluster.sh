#!/usr/bin/env bash
# The same queries through `mplug sql` in-process and on a loopback Ballista cluster (a scheduler and
# two executors on this machine), same binary, same files, one run. Wall time per query includes the
# process start and planning on both sides (median of 5 after a warm-up).
#
#   scripts/bench-sql-cluster.sh [ROWS]     (default 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS="${1:-1000000}"
# shellcheck source=/dev/null
source .mplug-env
WORK="${MPLUG_BENCH_DIR:-$HOME/.cache/mplug/bench}/sql_$ROWS"
[ -f "$WORK/manifest.json" ] || "$MPLUG_PYTHON" benches/make_sql_bench.py --out "$WORK" --rows "$ROWS"
M="${MPLUG_BIN:-$CARGO_TARGET_DIR/debug/mplug}"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); binary $M"
LOGS=$(mktemp -d)
"$M" ballista scheduler --port 50150 --executor-timeout 20 2>"$LOGS/s.log" &
PIDS=$!
for i in 0 1; do
  "$M" ballista executor --scheduler 127.0.0.1:50150 --port $((50151 + 2 * i)) --grpc-port $((50152 + 2 * i)) \
    --heartbeat 5 --concurrent-tasks 1 --work-dir "$LOGS" 2>"$LOGS/e$i.log" &
  PIDS="$PIDS $!"
done
trap 'kill $PIDS 2>/dev/null; wait 2>/dev/null' EXIT
until "$M" sql --data "$WORK" --cluster df://127.0.0.1:50150 --format csv "SELECT 1 AS one" >/dev/null 2>&1; do sleep 0.5; done
median() { "$MPLUG_PYTHON" -c "import statistics,sys; print(f'{statistics.median(map(float, sys.argv[1:])):.3f}')" "$@"; }
run() {  # run WHERE SQL -> median seconds
  local times=() s e
  "$M" sql --data "$WORK" $1 --format csv "$2" >/dev/null
  for _ in 1 2 3 4 5; do
    s=$(date +%s.%N); "$M" sql --data "$WORK" $1 --format csv "$2" >/dev/null; e=$(date +%s.%N)
    times+=("$(echo "$e - $s" | bc)")
  done
  median "${times[@]}"
}
for q in "SELECT count(*) FROM t" \
         "SELECT split, count(*), avg(width) FROM t GROUP BY split" \
         "SELECT count(*) FROM t WHERE width > 600 AND split = 'train'" \
         "SELECT count(*) FROM (SELECT unnest(captions) AS c FROM t) u WHERE c LIKE '%red%'"; do
  a=$(run "" "$q"); b=$(run "--cluster df://127.0.0.1:50150" "$q")
  # without ORDER BY the row order is unspecified on both sides: compare the sorted rows
  same=$(cmp -s <("$M" sql --data "$WORK" --format csv "$q" | sort) \
    <("$M" sql --data "$WORK" --cluster df://127.0.0.1:50150 --format csv "$q" | sort) && echo "same rows" || echo "ROWS DIFFER")
  echo "$q | in-process ${a}s | cluster ${b}s | $same"
done
