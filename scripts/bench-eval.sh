#!/usr/bin/env bash
# Evaluation throughput, side by side on the same split, weights and machine:
#   mplug eval (KV cache) | mplug eval --no-kv-cache (the reference's re-run of the prefix) |
#   the PyTorch reference path (tests/py/eval_reference.py: pyarrow + PIL + the reference model and
#   beam search, eager PyTorch, same threads).
# Caption (beam 5, min 8, max 25) and VQA (beam 5, min 1, max 10) on the synthetic shapes world with a
# random checkpoint in the released format. Random weights rarely emit [SEP] early, so captions run
# to max_length: the KV cache's best case. Prints one line per run: items/s and generated tokens/s.
#   scripts/bench-eval.sh [--preset tiny|base] [--device cpu|cuda] [--images N] [--limit N]
set -euo pipefail
cd "$(dirname "$0")/.."
PRESET=tiny DEVICE=cpu IMAGES=200 LIMIT=200
while [ $# -gt 0 ]; do
  case "$1" in
    --preset) PRESET=$2; shift 2 ;;
    --device) DEVICE=$2; shift 2 ;;
    --images) IMAGES=$2; shift 2 ;;
    --limit) LIMIT=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -f .mplug-env ] || scripts/setup.sh
# shellcheck disable=SC1091
source .mplug-env
if [ -z "${MPLUG_BIN:-}" ]; then
  cargo build --release -q --bin mplug
  MPLUG_BIN=$CARGO_TARGET_DIR/release/mplug
fi
PY=${MPLUG_PYTHON:-.venv/bin/python}
case "$PRESET" in
  tiny) DIMS=(--bert configs/config_bert_tiny.json --vision-width 64 --vision-layers 2 --vision-heads 2
              --patch 4 --image-res 32 --embed-dim 16); POS=65; VQA_CFG=configs/vqa_tiny.yaml
        CAP_CFG=configs/caption_tiny.yaml; BATCH=16 ;;
  base) DIMS=(--bert configs/config_bert_stride3.json --vision-width 768 --vision-layers 12 --vision-heads 12
              --patch 16 --image-res 384 --embed-dim 256); POS=577; VQA_CFG=configs/vqa_mplug_base.yaml
        CAP_CFG=configs/caption_mplug_base.yaml; BATCH=${BATCH:-16} ;;
  *) echo "--preset tiny|base" >&2; exit 2 ;;
esac
W=${BENCH_DIR:-$HOME/.cache/mplug/bench/eval-$PRESET}
mkdir -p "$W"
if [ ! -f "$W/coco/manifest.json" ]; then
  "$MPLUG_BIN" synth --out "$W/raw" --images "$IMAGES" --seed 11 >/dev/null
  "$MPLUG_BIN" ingest coco --quiet --annotations "$W/raw/annotations/coco_karpathy_train.json" \
    --images "$W/raw/images" --out "$W/coco" >/dev/null
  "$MPLUG_BIN" ingest vqa --quiet --annotations "$W"/raw/vqa/*.json --images "$W/raw/images" \
    --out "$W/vqa" >/dev/null
fi
[ -f "$W/task.pth" ] || "$PY" tests/py/mplug_reference.py make-checkpoint "${DIMS[@]}" --out "$W/task.pth" \
  --pos-rows "$POS" --seed 1
echo "# $(date -u +%FT%TZ) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), preset $PRESET, device $DEVICE, torch threads $(nproc)"
tokens() { "$PY" -c "import json,sys; print(sum(len(t['tokens'])-1 for t in json.load(open(sys.argv[1]))))" "$1"; }
for task in caption vqa; do
  if [ "$task" = caption ]; then CFG=$CAP_CFG DATA=$W/coco SPLIT=train DEC=(5 5 8 25)
  else CFG=$VQA_CFG DATA=$W/vqa SPLIT=train DEC=(5 5 1 10); fi
  for mode in cache no-cache; do
    extra=(); [ "$mode" = no-cache ] && extra=(--no-kv-cache)
    out="$W/out-$task-$mode"
    "$MPLUG_BIN" eval "$task" --quiet --config "$CFG" --weights "$W/task.pth" --data "$DATA" --split "$SPLIT" \
      --out "$out" --device "$DEVICE" --batch-size "$BATCH" --limit "$LIMIT" --save-tokens "${extra[@]}" >/dev/null
    "$PY" - "$out" "$(tokens "$out/tokens.json")" "$task" "$mode" <<'PY'
import json, sys
p = json.load(open(sys.argv[1] + "/metrics.json"))["provenance"]
n, s = p["items"], p["seconds"]
print(f"mplug {sys.argv[3]:<8} {sys.argv[4]:<9} {n} items {s:7.2f} s  {n/s:8.2f} items/s  {int(sys.argv[2])/s:9.1f} tokens/s")
PY
  done
  "$PY" tests/py/eval_reference.py "$task" --ckpt "$W/task.pth" "${DIMS[@]}" --data "$DATA" --split "$SPLIT" \
    --vocab "$MPLUG_VOCAB" --batch-size "$BATCH" --beam-size "${DEC[1]}" --min-length "${DEC[2]}" \
    --max-length "${DEC[3]}" --limit "$LIMIT" --device "$DEVICE" 2>"$W/ref-$task.err" >"$W/ref-$task.json"
  "$PY" - "$W/ref-$task.err" "$task" <<'PY'
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
n, s = r["items"], r["seconds"]
print(f"torch {sys.argv[2]:<8} reference {n} items {s:7.2f} s  {n/s:8.2f} items/s  {r['generated_tokens']/s:9.1f} tokens/s")
PY
done
