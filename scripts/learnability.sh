#!/usr/bin/env bash
# Does pre-training learn? The tiny mPLUG (configs/pretrain_tiny.yaml) on the synthetic shapes world,
# on CPU: synthesise N images, ingest the Karpathy train split for training and val+test as held-out,
# train with held-out evaluation (ITC recall@1 both ways, ITM and MLM accuracy, eval.jsonl), plot.
#
#   scripts/learnability.sh [N_IMAGES] [STEPS] [OUT] [--set k=v ...]   (defaults 2000, 6000, out/learnability)
#   MPLUG_BIN=path/to/mplug uses that binary instead of building a release one.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-2000}"
STEPS="${2:-6000}"
OUT="${3:-out/learnability}"
scripts/setup.sh >/dev/null
# shellcheck source=/dev/null
source .mplug-env
if [ -n "${MPLUG_BIN:-}" ]; then
  M="$MPLUG_BIN"
else
  cargo build --release --quiet --bin mplug
  M="$CARGO_TARGET_DIR/release/mplug"
fi
rm -rf "$OUT"
"$M" synth --out "$OUT/raw" --images "$N" --seed 7 >/dev/null
A="$OUT/raw/annotations"
"$M" ingest coco --quiet --annotations "$A/coco_karpathy_train.json" --images "$OUT/raw/images" \
  --out "$OUT/train" --max-side 48 >/dev/null
"$M" ingest coco --quiet --annotations "$A/coco_karpathy_val.json" "$A/coco_karpathy_test.json" \
  --images "$OUT/raw/images" --out "$OUT/heldout" --max-side 48 >/dev/null
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "train samples: $("$M" sql --data "$OUT" --format csv "SELECT count(*) AS n FROM train" | tail -n1)," \
     "held-out: $("$M" sql --data "$OUT" --format csv "SELECT count(*) AS n FROM heldout" | tail -n1)"
start=$(date +%s)
"$M" train --config configs/pretrain_tiny.yaml --data "$OUT/train" --eval-data "$OUT/heldout" \
  --out "$OUT/run" --device cpu --quiet --set "train.max_steps=$STEPS" --set train.eval_every=250 \
  --set train.checkpoint_every=500 "${@:4}"
echo "wall: $(( $(date +%s) - start )) s"
"$M" plot "$OUT/run"
echo "held-out (eval.jsonl):"
cat "$OUT/run/eval.jsonl"
