#!/usr/bin/env bash
# Model forward+backward benchmark, mplug (tch) vs the PyTorch eager baseline, side by side on this
# machine: tiny (32 px, batch 8) and base (256 px, batch 2). Prints one JSON line per run.
#   scripts/bench-model.sh [--device cpu|cuda] [--dtype fp32|bf16] [--profile dev|release]
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICE=cpu DTYPE=fp32 PROFILE=dev
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE=$2; shift 2 ;;
    --dtype) DTYPE=$2; shift 2 ;;
    --profile) PROFILE=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -f .mplug-env ] || scripts/setup.sh
# shellcheck disable=SC1091
source .mplug-env
if [ -z "${MPLUG_BIN:-}" ]; then
  if [ "$PROFILE" = release ]; then cargo build --release -q; MPLUG_BIN=$CARGO_TARGET_DIR/release/mplug
  else cargo build -q; MPLUG_BIN=$CARGO_TARGET_DIR/debug/mplug; fi
fi
PY=${MPLUG_PYTHON:-.venv/bin/python}
run() { # config yaml, preset, res, batch, steps
  "$MPLUG_BIN" model bench --config "configs/$1.yaml" --image-res "$3" --batch "$4" --steps "$5" \
    --device "$DEVICE" --dtype "$DTYPE" --no-dropout
  "$MPLUG_BIN" model bench --config "configs/$1.yaml" --image-res "$3" --batch "$4" --steps "$5" \
    --device "$DEVICE" --dtype "$DTYPE"
  "$PY" benches/torch_model.py --config "$2" --image-res "$3" --batch "$4" --steps "$5" \
    --device "$DEVICE" --dtype "$DTYPE"
}
echo "# $(date -u +%FT%TZ) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), device $DEVICE $DTYPE"
run tiny tiny 32 8 10
run mplug_base base 256 "${BASE_BATCH:-2}" "${BASE_STEPS:-3}"
