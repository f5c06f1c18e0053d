#!/usr/bin/env bash
# Ingest throughput, side by side on the same files and machine: mplug (release) vs the Pillow +
# pyarrow baseline a user would write (benches/pillow_ingest.py), plus decode-only speed of both,
# plus peak memory at two dataset sizes. Results go to stdout; copy them into docs/BENCHMARKS.md.
#
#   scripts/bench-ingest.sh [N_IMAGES]     (default 500)
#
# Photos: two real photographs from Debian's lomiri-wallpapers-20.04 package (apt-get download, not
# installed), cut into N COCO-like 640x480 JPEG crops by benches/make_coco_like.py.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-500}"
scripts/setup.sh >/dev/null
# shellcheck source=/dev/null
source .mplug-env
PY="$MPLUG_PYTHON"
WORK="${MPLUG_BENCH_DIR:-$HOME/.cache/mplug/bench}"
mkdir -p "$WORK"

if [ ! -f "$WORK/photos/Kleiber_by_Lukas_Baubkus.jpg" ]; then
  (cd "$WORK" && apt-get download -q lomiri-wallpapers-20.04 >/dev/null && dpkg-deb -x lomiri-wallpapers-20.04_*.deb pkg)
  mkdir -p "$WORK/photos"
  cp "$WORK"/pkg/usr/share/backgrounds/{Kleiber_by_Lukas_Baubkus,Infinite-Sea_by_Aury88}.jpg "$WORK/photos/"
fi
SET="$WORK/coco_like_$N"
if [ ! -f "$SET/annotations/captions_val2017.json" ]; then
  "$PY" benches/make_coco_like.py "$WORK"/photos/*.jpg --out "$SET" --n "$N"
fi
cargo build --release --quiet --bin mplug
M="$CARGO_TARGET_DIR/release/mplug"

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "images:  $N COCO-like 640x480 JPEGs (q90 4:2:0) cut from real photographs"
echo
best() { sort -n | head -n1; }

echo "== Pillow + pyarrow baseline (1 process), best of 3"
for mode in decode-only full; do
  flag=""; [ "$mode" = decode-only ] && flag="--decode-only"
  for _ in 1 2 3; do
    "$PY" benches/pillow_ingest.py "$SET/annotations/captions_val2017.json" "$SET/images" "$WORK/pillow.parquet" $flag
  done | "$PY" -c "import sys,json; r=[json.loads(l) for l in sys.stdin]; b=max(r,key=lambda x:x['images_per_s']); print('  $mode', json.dumps(b))"
done

echo "== mplug ingest coco (release), best of 3 (wall images/s, images per CPU-second)"
for threads in 1 2; do
  for _ in 1 2 3; do
    "$M" ingest coco --annotations "$SET/annotations/captions_val2017.json" --images "$SET/images" \
      --out "$WORK/mplug_out" --threads "$threads" --force --quiet \
      | awk '/^time/ {gsub(/[()]/,""); w=$4} /^cpu/ {gsub(/[()]/,""); c=$4} END {print w, c}'
  done | sort -rn | head -n1 | sed "s/^/  threads=$threads: /"
done

if [ -z "${SKIP_CRITERION:-}" ]; then
echo "== mplug decode-only / stage costs (criterion, 1 core)"
MPLUG_BENCH_IMAGES="$SET/images" cargo bench --quiet --bench decode_resize 2>/dev/null | grep -E "ingest_stages|thrpt" || true
fi

echo "== peak memory (max RSS) vs dataset size, synthetic 640x480 JPEGs"
for n in 500 2000; do
  raw="$WORK/synth_$n"
  [ -d "$raw/images" ] || "$M" synth --out "$raw" --images "$n" --size 640x480 --plain-jpeg >/dev/null
  /usr/bin/time -f "  images=$n max_rss_kb=%M" "$M" ingest coco --annotations "$raw"/annotations/coco_karpathy_{train,val,test}.json \
    --images "$raw/images" --out "$WORK/mem_$n" --force --quiet --threads 2 >/dev/null
done
