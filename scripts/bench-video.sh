#!/usr/bin/env bash
# Video ingest throughput, mplug vs PyAV + Pillow, side by side on the same synthetic clips.
#   scripts/bench-video.sh [CLIPS] [FRAMES_PER_CLIP] [GOP]      (defaults 60 300 50)
# mplug runs `ingest msrvtt` with --threads 1 (release build unless MPLUG_BIN is set); the baseline
# is benches/pyav_frames.py (one process, one decoder thread), in its decode-all and seek variants.
set -euo pipefail
cd "$(dirname "$0")/.."
CLIPS=${1:-60} FRAMES=${2:-300} GOP=${3:-50}
[ -f .mplug-env ] || scripts/setup.sh
# shellcheck disable=SC1091
source .mplug-env
"$MPLUG_PYTHON" -c "import av" 2>/dev/null || "$MPLUG_PYTHON" -m pip install -q av
if [ -z "${MPLUG_BIN:-}" ]; then cargo build --release -q; MPLUG_BIN=$CARGO_TARGET_DIR/release/mplug; fi
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
"$MPLUG_BIN" synth --video --clips "$CLIPS" --clip-frames "$FRAMES" --gop "$GOP" --out "$W/raw" >/dev/null
V="$W/raw/msrvtt/videos"
echo "# $(date -u +%FT%TZ) $(nproc) cores, $CLIPS clips x $FRAMES frames 320x240 (h264/vp9/mjpeg mix, GOP $GOP), 12 frames @224"
for run in 1 2; do
  rm -rf "$W/out"
  "$MPLUG_BIN" ingest msrvtt --annotations "$W/raw/msrvtt/annotations/train_val_videodatainfo.json" \
    --videos "$V" --out "$W/out" --threads 1 --quiet | grep -E "^(time|cpu)" | sed "s/^/mplug run $run: /"
done
"$MPLUG_PYTHON" benches/pyav_frames.py "$V" --frames 12 --size 224 --mode decode-all
"$MPLUG_PYTHON" benches/pyav_frames.py "$V" --frames 12 --size 224 --mode seek
