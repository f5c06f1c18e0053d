#!/usr/bin/env bash
# The README's first command: installs what is missing, then runs the main job on the embedded sample
# data — generate the synthetic COCO-format dataset, ingest it, verify it, print a summary.
# Idempotent: a second run regenerates identical files and finds the dataset up to date.
#
#   scripts/demo.sh [OUT_DIR] [N_IMAGES]      (defaults: out/demo, 500)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-out/demo}"
N="${2:-500}"

scripts/setup.sh
# shellcheck source=/dev/null
source .mplug-env
echo "==> building mplug (first build: several minutes)" >&2
cargo build --quiet --bin mplug
M="$CARGO_TARGET_DIR/debug/mplug"

echo "==> mplug synth --out $OUT/raw --images $N" >&2
"$M" synth --out "$OUT/raw" --images "$N"
echo "==> mplug ingest coco (ALBEF/mPLUG Karpathy lists) → $OUT/coco_karpathy" >&2
"$M" ingest coco \
  --annotations "$OUT"/raw/annotations/coco_karpathy_{train,val,test}.json \
  --images "$OUT/raw/images" \
  --out "$OUT/coco_karpathy"
echo "==> mplug verify $OUT/coco_karpathy" >&2
"$M" verify "$OUT/coco_karpathy"
echo
echo "Done. Shards: $OUT/coco_karpathy/shards/  Manifest: $OUT/coco_karpathy/manifest.json"
echo "Binary: $M   (try: $M --help)"
