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

echo "==> mplug synth --video --out $OUT/raw_video (h264/mp4, vp9/webm, mjpeg/avi clips)" >&2
"$M" synth --video --out "$OUT/raw_video" --clips 12
echo "==> mplug ingest msrvtt (12 frames @224, the reference's uniform rule) → $OUT/msrvtt" >&2
"$M" ingest msrvtt \
  --annotations "$OUT"/raw_video/msrvtt/annotations/{train_val_videodatainfo.json,MSRVTT_JSFUSION_test.csv} \
  --videos "$OUT/raw_video/msrvtt/videos" --out "$OUT/msrvtt"
echo "==> mplug sql: frames per split" >&2
"$M" sql --data "$OUT" "SELECT split, count(*) AS clips, sum(cardinality(frames)) AS frames FROM msrvtt GROUP BY split ORDER BY split"

echo "==> the tiny mPLUG: parameter counts, fresh weights, one forward with beam search" >&2
"$M" model info --config configs/tiny.yaml
"$M" model init --config configs/tiny.yaml --out "$OUT/tiny.safetensors"
"$MPLUG_PYTHON" - "$OUT/tiny_inputs.safetensors" <<'PY'
import sys
sys.path.insert(0, "tests/py")
from mplug_reference import st_write
import torch
g = torch.Generator().manual_seed(0)
st_write(sys.argv[1], {"image": torch.randn(2, 3, 32, 32, generator=g),
                       "input_ids": torch.tensor([[101, 2054, 3609, 2003], [101, 2029, 2126, 0]]),
                       "attention_mask": torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])})
PY
"$M" forward --config configs/tiny.yaml --weights "$OUT/tiny.safetensors" --inputs "$OUT/tiny_inputs.safetensors" \
  --out "$OUT/tiny_outputs.safetensors" --module generate --beam-size 3 --max-length 5
echo "==> mplug train: 30 steps of the tiny model (ITC+ITM+MLM+PrefixLM) on the shards, then mplug plot" >&2
"$M" train --config configs/pretrain_tiny.yaml --data "$OUT/coco_karpathy" --out "$OUT/tiny_run" --device cpu \
  --set train.max_steps=30 --set train.checkpoint_every=10 --set batch_size=8 --set queue_size=64 --force --quiet
"$M" plot "$OUT/tiny_run"
echo "==> mplug ingest refcoco (refs(unc).p + instances.json) → $OUT/refcoco; mplug show: a contact sheet" >&2
"$M" ingest refcoco --annotations "$OUT/raw/refcoco/refs(unc).p" "$OUT/raw/refcoco/instances.json" \
  --images "$OUT/raw/refcoco/images" --out "$OUT/refcoco"
"$M" show "$OUT/refcoco" --split testA --n 12 --out "$OUT/sheet_refcoco.png"
echo "==> mplug ingest vqa (the shapes world in VQA v2 format) → $OUT/vqa" >&2
"$M" ingest vqa --annotations "$OUT"/raw/vqa/*.json --images "$OUT/raw/images" --out "$OUT/vqa"
CKPT="$OUT/tiny_run/checkpoints/step-00000030/model.safetensors"
echo "==> mplug eval vqa / caption: the 30-step pre-trained model (not fine-tuned, so scores near 0), official files + metrics" >&2
"$M" eval vqa --config configs/vqa_tiny.yaml --weights "$CKPT" --data "$OUT/vqa" --split val \
  --out "$OUT/eval_vqa" --device cpu --limit 200
"$M" eval caption --config configs/caption_tiny.yaml --weights "$CKPT" --data "$OUT/coco_karpathy" \
  --split test --out "$OUT/eval_caption" --device cpu --limit 100
"$M" eval retrieval --config configs/retrieval_tiny.yaml --weights "$CKPT" --data "$OUT/coco_karpathy" \
  --split test --out "$OUT/eval_retrieval" --device cpu
echo "==> mplug eval grounding (RefCOCO testA) and video-retrieval (MSRVTT test, zero-shot); mplug score grounding" >&2
"$M" eval grounding --config configs/grounding_tiny.yaml --weights "$CKPT" --data "$OUT/refcoco" \
  --split testA --out "$OUT/eval_grounding" --device cpu
"$M" score grounding --results "$OUT/eval_grounding/results.json" \
  --annotations "$OUT/raw/refcoco/refs(unc).p" "$OUT/raw/refcoco/instances.json" --split testA
"$M" eval video-retrieval --config configs/retrieval_tiny.yaml --weights "$CKPT" --data "$OUT/msrvtt" \
  --split test --out "$OUT/eval_video_retrieval" --device cpu
"$M" show "$OUT/vqa" --split val --results "$OUT/eval_vqa/results.json" --worst --n 12 \
  --out "$OUT/sheet_vqa_worst.png"
echo
echo "Done. Shards: $OUT/coco_karpathy/shards/  Manifest: $OUT/coco_karpathy/manifest.json"
echo "      Video shards: $OUT/msrvtt/shards/   Model outputs: $OUT/tiny_outputs.safetensors"
echo "      Training run: $OUT/tiny_run/ (metrics.jsonl, curves.png, checkpoints/)"
echo "      Evaluation: $OUT/eval_{vqa,caption,retrieval,grounding,video_retrieval}/ (results.json, metrics.json)"
echo "      Contact sheets: $OUT/sheet_refcoco.png, $OUT/sheet_vqa_worst.png"
echo "Binary: $M   (try: $M --help)"
