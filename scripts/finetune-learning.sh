#!/usr/bin/env bash
# Does fine-tuning learn? The tiny mPLUG pre-trained briefly on the synthetic shapes world, then
# fine-tuned per task from that checkpoint and evaluated by `mplug eval` on held-out data next to the
# trivial baseline each task has (CPU):
#   vqa      VQA accuracy (official vqaEval) on val  vs  the most frequent train answer per question type
#   caption  CIDEr-D on Karpathy val                 vs  the most frequent train caption for every image
#   caption-scst  CIDEr-D on Karpathy val after SCST from the caption run  vs  that caption run
#   retrieval r_mean / R@1 on Karpathy val           vs  chance, and the pre-trained checkpoint itself
#   snli-ve  accuracy on dev                          vs  the majority train label
#   nlvr2    accuracy on dev                          vs  the majority train label (and the text-only
#                                                         one: each sentence's majority train label)
#   grounding acc@0.5 on RefCOCO val                  vs  the centre box of the mean train size
#
#   scripts/finetune-learning.sh [N_IMAGES] [PRETRAIN_STEPS] [OUT]   (defaults 1000, 1000, out/finetune-learning)
#   TASKS="vqa caption snli-ve nlvr2" picks tasks; KEEP=1 reuses OUT's data and pre-training.
#   MPLUG_BIN=path/to/mplug uses that binary instead of building a release one.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-1000}"
PRE="${2:-1000}"
OUT="${3:-out/finetune-learning}"
TASKS="${TASKS:-vqa caption caption-scst retrieval snli-ve nlvr2 grounding}"
scripts/setup.sh >/dev/null
# shellcheck source=/dev/null
source .mplug-env
if [ -n "${MPLUG_BIN:-}" ]; then
  M="$MPLUG_BIN"
else
  cargo build --release --quiet --bin mplug
  M="$CARGO_TARGET_DIR/release/mplug"
fi
CKPT="$OUT/pretrain/checkpoints/$(printf 'step-%08d' "$PRE")"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
if [ "${KEEP:-0}" != 1 ] || [ ! -d "$CKPT" ]; then
  rm -rf "$OUT"
  "$M" synth --out "$OUT/raw" --images "$N" --seed 7 >/dev/null
  "$M" ingest coco --quiet --annotations "$OUT/raw/annotations/coco_karpathy_train.json" \
    --images "$OUT/raw/images" --out "$OUT/captions" --max-side 48 >/dev/null
  start=$(date +%s)
  "$M" train --config configs/pretrain_tiny.yaml --data "$OUT/captions" --out "$OUT/pretrain" --device cpu \
    --quiet --set "train.max_steps=$PRE" --set "train.checkpoint_every=$PRE"
  echo "pre-training: $PRE steps, $(( $(date +%s) - start )) s"
fi

# $1 task, $2 config, $3 data, $4 eval split [$5 eval data] [$6 init]; fine-tunes from the
# pre-trained checkpoint (or $6), evaluates the last checkpoint into $OUT/eval_$1
finetune() {
  local start run eval_task
  start=$(date +%s)
  run="$OUT/run_$1"
  eval_task="${1%-scst}"
  "$M" finetune "$1" --config "$2" --init "${6:-$CKPT}" --data "$3" --out "$run" --device cpu --quiet --force
  echo "$1 fine-tuning: $(wc -l < "$run/metrics.jsonl") steps, $(( $(date +%s) - start )) s"
  "$M" plot "$run" >/dev/null
  "$M" eval "$eval_task" --config "$2" --weights "$run/$(cat "$run/latest")/model.safetensors" \
    --data "${5:-$3}" --split "$4" --out "$OUT/eval_$1" --device cpu --quiet
}

for task in $TASKS; do
  echo "=================== $task"
  case "$task" in
  vqa)
    [ -d "$OUT/vqa" ] || "$M" ingest vqa --quiet --annotations "$OUT"/raw/vqa/*.json --images "$OUT/raw/images" \
      --out "$OUT/vqa" --max-side 48 >/dev/null
    finetune vqa configs/vqa_tiny.yaml "$OUT/vqa" val
    "$MPLUG_PYTHON" - "$OUT/vqa" "$OUT/baseline_vqa.json" <<'PY'
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
json.dump([{"question_id": int(q), "answer": (counts[t] or overall).most_common(1)[0][0]} for q, t in val],
          open(sys.argv[2], "w"))
print("baseline answers:", {t: c.most_common(1)[0][0] for t, c in sorted(counts.items())})
PY
    echo "== baseline: most frequent train answer per question type"
    "$M" score vqa --results "$OUT/baseline_vqa.json" --annotations "$OUT/eval_vqa/annotations.json"
    ;;
  caption)
    [ -d "$OUT/captions_val" ] || "$M" ingest coco --quiet \
      --annotations "$OUT/raw/annotations/coco_karpathy_val.json" --images "$OUT/raw/images" \
      --out "$OUT/captions_val" --max-side 48 >/dev/null
    finetune caption configs/caption_tiny.yaml "$OUT/captions" val "$OUT/captions_val"
    "$MPLUG_PYTHON" - "$OUT/captions" "$OUT/eval_caption/results.json" "$OUT/baseline_caption.json" <<'PY'
import collections, glob, json, sys
import pyarrow.parquet as pq
c = collections.Counter()
for f in sorted(glob.glob(sys.argv[1] + "/shards/*.parquet")):
    for r in pq.read_table(f, columns=["captions"]).to_pylist():
        c.update(x.lower().strip() for x in r["captions"])
const = c.most_common(1)[0][0]
res = json.load(open(sys.argv[2]))
json.dump([{"image_id": r["image_id"], "caption": const} for r in res], open(sys.argv[3], "w"))
print("baseline caption:", repr(const))
PY
    echo "== baseline: the most frequent train caption for every image"
    "$M" score caption --results "$OUT/baseline_caption.json" --annotations "$OUT/eval_caption/references.json"
    ;;
  caption-scst)
    [ -f "$OUT/run_caption/latest" ] || { echo "caption-scst starts from the caption run: TASKS=\"caption caption-scst\"" >&2; exit 2; }
    finetune caption-scst configs/caption_scst_tiny.yaml "$OUT/captions" val "$OUT/captions_val" \
      "$OUT/run_caption/$(cat "$OUT/run_caption/latest")"
    echo "== the cross-entropy checkpoint it started from: CIDEr-D $("$MPLUG_PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["caption"]["metrics"]["CIDEr"])' "$OUT/eval_caption/metrics.json")"
    ;;
  grounding)
    [ -d "$OUT/refcoco" ] || "$M" ingest refcoco --quiet --annotations "$OUT/raw/refcoco/refs(unc).p" \
      "$OUT/raw/refcoco/instances.json" --images "$OUT/raw/refcoco/images" --out "$OUT/refcoco" --max-side 48 >/dev/null
    finetune grounding configs/grounding_tiny.yaml "$OUT/refcoco" val
    "$MPLUG_PYTHON" - "$OUT/refcoco" <<'PY'
import glob, sys
import pyarrow.parquet as pq
rows = []
for f in sorted(glob.glob(sys.argv[1] + "/shards/*.parquet")):
    rows += pq.read_table(f, columns=["split", "orig_width", "orig_height", "boxes", "sentence_refs"]).to_pylist()
def norm(r, ref):
    x, y, w, h = r["boxes"][ref]
    return x / r["orig_width"], y / r["orig_height"], w / r["orig_width"], h / r["orig_height"]
train = [norm(r, s) for r in rows if r["split"] == "train" for s in r["sentence_refs"]]
mw, mh = sum(b[2] for b in train) / len(train), sum(b[3] for b in train) / len(train)
centre = (0.5 - mw / 2, 0.5 - mh / 2, 0.5 + mw / 2, 0.5 + mh / 2)
def iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0])); ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)
val = [norm(r, s) for r in rows if r["split"] == "val" for s in r["sentence_refs"]]
hits = sum(iou(centre, (x, y, x + w, y + h)) >= 0.5 for x, y, w, h in val)
print(f"== baseline: the centre box of the mean train size ({mw:.3f} x {mh:.3f}) on val: acc@0.5 {100.0 * hits / len(val):.2f} over {len(val)} expressions")
PY
    ;;
  retrieval)
    [ -d "$OUT/captions_val" ] || "$M" ingest coco --quiet \
      --annotations "$OUT/raw/annotations/coco_karpathy_val.json" --images "$OUT/raw/images" \
      --out "$OUT/captions_val" --max-side 48 >/dev/null
    finetune retrieval configs/retrieval_tiny.yaml "$OUT/captions" val "$OUT/captions_val"
    echo "== the pre-trained checkpoint, not fine-tuned"
    "$M" eval retrieval --config configs/retrieval_tiny.yaml --weights "$CKPT/model.safetensors" \
      --data "$OUT/captions_val" --split val --out "$OUT/eval_retrieval_pretrained" --device cpu --quiet
    ;;
  snli-ve | nlvr2)
    dir=$(echo "$task" | tr - _)
    [ -d "$OUT/$dir" ] || "$M" ingest "$task" --quiet --annotations "$OUT/raw/$dir"/*.json* \
      --images "$OUT/raw/$dir/images" --out "$OUT/$dir" >/dev/null
    finetune "$task" "configs/${dir}_tiny.yaml" "$OUT/$dir" dev
    "$MPLUG_PYTHON" - "$OUT/$dir" <<'PY'
import collections, glob, sys
import pyarrow.parquet as pq
train, per_sentence, dev = collections.Counter(), collections.defaultdict(collections.Counter), []
for f in sorted(glob.glob(sys.argv[1] + "/shards/*.parquet")):
    for r in pq.read_table(f, columns=["split", "statements", "labels"]).to_pylist():
        if r["split"] == "train":
            train.update(r["labels"])
            for s, l in zip(r["statements"], r["labels"]):
                per_sentence[s][l] += 1
        elif r["split"] == "dev":
            dev.extend(zip(r["statements"], r["labels"]))
major = train.most_common(1)[0][0]
print(f"== baseline: the majority train label ({major}) on dev: accuracy {100.0 * sum(l == major for _, l in dev) / len(dev):.2f} over {len(dev)} statements")
# text only: the majority train label of the same sentence (the overall one for a new sentence)
guess = lambda s: per_sentence[s].most_common(1)[0][0] if per_sentence[s] else major
print(f"== text-only baseline: each sentence's majority train label: accuracy {100.0 * sum(l == guess(s) for s, l in dev) / len(dev):.2f}")
PY
    ;;
  *) echo "unknown task $task" >&2; exit 2 ;;
  esac
done
