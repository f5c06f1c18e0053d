#!/usr/bin/env bash
# Download + resize throughput against a loopback HTTP server, side by side on the same images and
# machine: mplug (release; `ingest cc3m --download`: fetch, DCT-draft decode, resize to 512, baseline
# JPEG, Parquet) vs img2dataset (the tool users run for CC3M/CC12M/SBU; keep_ratio 512, parquet
# output, same concurrency), in its own venv. CPU seconds are those of the tool's process tree
# (/usr/bin/time), so the per-core figures exclude the server. Copy the output into docs/BENCHMARKS.md.
#
#   scripts/bench-download.sh [N_IMAGES]     (default 300)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-300}"
scripts/setup.sh >/dev/null
# shellcheck source=/dev/null
source .mplug-env
PY="$MPLUG_PYTHON"
WORK="${MPLUG_BENCH_DIR:-$HOME/.cache/mplug/bench}"
mkdir -p "$WORK"
PORT=8765

if [ ! -f "$WORK/photos/Kleiber_by_Lukas_Baubkus.jpg" ]; then
  (cd "$WORK" && apt-get download -q lomiri-wallpapers-20.04 >/dev/null && dpkg-deb -x lomiri-wallpapers-20.04_*.deb pkg)
  mkdir -p "$WORK/photos"
  cp "$WORK"/pkg/usr/share/backgrounds/{Kleiber_by_Lukas_Baubkus,Infinite-Sea_by_Aury88}.jpg "$WORK/photos/"
fi
SET="$WORK/web_$N"
if [ ! -f "$SET/Train_GCC-training.tsv" ]; then
  "$PY" benches/make_web_originals.py "$WORK"/photos/*.jpg --out "$SET" --n "$N" --base "http://127.0.0.1:$PORT"
fi
I2D="$WORK/img2dataset-venv"
if [ ! -x "$I2D/bin/img2dataset" ]; then
  python3 -m venv "$I2D" && "$I2D/bin/pip" install -q img2dataset
fi
cargo build --release --quiet --bin mplug
M="$CARGO_TARGET_DIR/release/mplug"

"$PY" benches/loopback_server.py "$SET" "$PORT" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
sleep 1

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "images:  $N web originals, long side 1000-3000 px, $(du -sh "$SET/img" | cut -f1), 1/3 progressive"
echo "== each run: wall s, CPU s (user+sys of the tool), images/s, images per CPU-second"
report() { awk -v n="$N" '{printf "  %-34s wall %6.2f s  cpu %6.2f s  %6.1f img/s  %6.1f img/CPU-s\n", $1, $2, $3+$4, n/$2, n/($3+$4)}'; }
for run in 1 2; do
  rm -rf "$WORK/dl_mplug" "$WORK/dl_mplug_out"
  /usr/bin/time -f "mplug(run$run) %e %U %S" -o "$WORK/time.txt" \
    "$M" ingest cc3m --annotations "$SET/Train_GCC-training.tsv" --images "$WORK/dl_mplug" --download \
    --out "$WORK/dl_mplug_out" --concurrency 16 --per-host-rate 0 --quiet >/dev/null
  report < "$WORK/time.txt"
  rm -rf "$WORK/dl_i2d"
  /usr/bin/time -f "img2dataset(run$run) %e %U %S" -o "$WORK/time.txt" \
    "$I2D/bin/img2dataset" --url_list "$SET/img2dataset.tsv" --input_format tsv --url_col url \
    --caption_col caption --output_format parquet --output_folder "$WORK/dl_i2d" --image_size 512 \
    --resize_mode keep_ratio --processes_count "$(nproc)" --thread_count 16 --encode_quality 95 \
    >/dev/null 2>&1
  report < "$WORK/time.txt"
done
echo "== check: rows written"
"$PY" -c "
import glob, pyarrow.parquet as pq
m = pq.read_table(sorted(glob.glob('$WORK/dl_mplug_out/shards/*.parquet')), columns=['width']).num_rows
i = sum(pq.read_table(f, columns=['status']).to_pylist().count({'status': 'success'}) for f in glob.glob('$WORK/dl_i2d/*.parquet'))
print(f'  mplug rows {m}, img2dataset successes {i}')
"
