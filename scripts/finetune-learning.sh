#!/usr/bin/env bash
# Does fine-tuning learn? The tiny mPLUG pre-trained briefly on the synthetic shapes world, then
# fine-tuned for VQA (configs/vqa_tiny.yaml: 8 epochs of the train split's questions) and evaluated by
# `mplug eval vqa` on the val split with the official VQA accuracy, next to the trivial baseline the
# issue names: the most frequent train answer of each question type (scored by `mplug score vqa`
# against the same ground truth). CPU.
#
#   scripts/finetune-learning.sh [N_IMAGES] [PRETRAIN_STEPS] [OUT]   (defaults 1000, 1000, out/finetune-learning)
#   MPLUG_BIN=path/to/mplug uses that binary instead of building a release one.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-1000}"
PRE="${2:-1000}"
OUT="${3:-out/finetune-learning}"
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
"$M" ingest coco --quiet --annotations "$OUT/raw/annotations/coco_karpathy_train.json" \
  --images "$OUT/raw/images" --out "$OUT/captions" --max-side 48 >/dev/null
"$M" ingest vqa --quiet --annotations "$OUT"/raw/vqa/*.json --images "$OUT/raw/images" \
  --out "$OUT/vqa" --max-side 48 >/dev/null
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
"$M" sql --data "$OUT" "SELECT split, count(*) AS images, sum(cardinality(question_ids)) AS questions FROM vqa GROUP BY split ORDER BY split"

start=$(date +%s)
"$M" train --config configs/pretrain_tiny.yaml --data "$OUT/captions" --out "$OUT/pretrain" --device cpu \
  --quiet --set "train.max_steps=$PRE" --set "train.checkpoint_every=$PRE"
echo "pre-training: $PRE steps, $(( $(date +%s) - start )) s"
CKPT="$OUT/pretrain/checkpoints/$(printf 'step-%08d' "$PRE")"

start=$(date +%s)
"$M" finetune vqa --config configs/vqa_tiny.yaml --init "$CKPT" --data "$OUT/vqa" --out "$OUT/vqa_run" \
  --device cpu --quiet
echo "fine-tuning: $(( $(date +%s) - start )) s, $(wc -l < "$OUT/vqa_run/metrics.jsonl") steps"
"$M" plot "$OUT/vqa_run"
LAST="$OUT/vqa_run/$(cat "$OUT/vqa_run/latest")/model.safetensors"

"$M" eval vqa --config configs/vqa_tiny.yaml --weights "$LAST" --data "$OUT/vqa" --split val \
  --out "$OUT/eval_finetuned" --device cpu --quiet
"$M" eval vqa --config configs/vqa_tiny.yaml --weights "$CKPT/model.safetensors" --data "$OUT/vqa" \
  --split val --out "$OUT/eval_pretrained" --device cpu --quiet

# baseline: the most frequent train answer (multiple_choice_answer) of each question type
"$MPLUG_PYTHON" - "$OUT/vqa" "$OUT/baseline.json" <<'PY'
import collections, glob, json, sys
import pyarrow.parquet as pq
counts, val = collections.defaultdict(collections.Counter), []
for f in sorted(glob.glob(sys.argv[1] + "/shards/*.parquet")):
    for r in pq.read_table(f, columns=["split", "question_ids", "question_types", "multiple_choice_answers"]).to_pylist():
        for q, t, a in zip(r["question_ids"], r["question_types"], r["multiple_choice_answers"]):
            if r["split"] == "train":
                counts[t][a] += 1
            elif r["split"] == "val":
                val.append((q, t))
overall = collections.Counter()
for c in counts.values():
    overall.update(c)
res = [{"question_id": int(q), "answer": (counts[t] or overall).most_common(1)[0][0]} for q, t in val]
json.dump(res, open(sys.argv[2], "w"))
print("baseline answers:", {t: c.most_common(1)[0][0] for t, c in sorted(counts.items())})
PY
echo "== most frequent answer per question type (baseline)"
"$M" score vqa --results "$OUT/baseline.json" --annotations "$OUT/eval_finetuned/annotations.json"
echo "== pre-trained, not fine-tuned"
"$M" score vqa --results "$OUT/eval_pretrained/results.json" --annotations "$OUT/eval_finetuned/annotations.json"
echo "== fine-tuned"
"$M" score vqa --results "$OUT/eval_finetuned/results.json" --annotations "$OUT/eval_finetuned/annotations.json"
