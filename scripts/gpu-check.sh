#!/usr/bin/env bash
# Everything mplug checks on a CUDA machine, in one call. The lent GPU machine has PyTorch 2.11 in its
# python3 but no cargo and no internet, so the binary is built here and carried:
#
#   here:    source .mplug-env && cargo build --release --no-default-features --features dist && mkdir -p gpu-bin \
#            && strip -o gpu-bin/mplug "$CARGO_TARGET_DIR/release/mplug" && xz -T2 gpu-bin/mplug \
#            && cp "$MPLUG_VOCAB" gpu-bin/
#   device:  scripts/gpu-check.sh            (run from the repository root, carrying gpu-bin/)
#
# The stripped binary is ~130 MB and a device call carries at most 64 MiB, hence the xz.
#
# Prints one JSON line per measurement and writes them to $OUT/gpu-check.jsonl when $OUT is set.
# Steps: doctor (CUDA visible to the binary) → CUDA forward equals CPU forward (tiny) → model
# forward+backward, bf16, base @256 and large @224, mplug vs the PyTorch eager baseline →
# `mplug train`, base @256, bf16 autocast, all four objectives on synthetic shards: samples/s and
# peak GPU memory (nvidia-smi sampled every 100 ms) → the same step split into data, forward,
# backward and optimiser time (`train.profile`) → `mplug eval caption/vqa`, base @384, with and
# without the KV cache → `mplug finetune vqa`, base @384, bf16: samples/s → data parallelism
# through NCCL with world size 1 (`mplug launch --nproc 1`): the collectives self-check with the
# bus bandwidth, and the base pre-training step with its all-reduce share. Carry
# gpu-bin/vocab.txt for the ingest.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${MPLUG_PYTHON:-python3}
BIN=${MPLUG_BIN:-gpu-bin/mplug}
if [ ! -x "$BIN" ] && [ -f gpu-bin/mplug.xz ]; then
  "$PY" -c "import lzma, shutil; shutil.copyfileobj(lzma.open('gpu-bin/mplug.xz'), open('/tmp/mplug', 'wb'))"
  chmod +x /tmp/mplug
  BIN=/tmp/mplug
fi
TORCH_LIB=$("$PY" -c "import torch, os; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))")
export LD_LIBRARY_PATH="$TORCH_LIB:${LD_LIBRARY_PATH:-}"
LOG=${OUT:-/tmp}/gpu-check.jsonl
: > "$LOG"
W=$(mktemp -d)
step() { echo "== $*" >&2; }

step doctor
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >&2 || true
"$BIN" doctor || echo "doctor reported problems (carrying on)" >&2

step "CUDA vs CPU forward (tiny, fp32)"
"$BIN" model init --config configs/tiny.yaml --out "$W/tiny.safetensors" --seed 1
"$PY" - "$W/in.safetensors" <<'PY'
import sys, torch
sys.path.insert(0, "tests/py")
from mplug_reference import st_write
g = torch.Generator().manual_seed(0)
st_write(sys.argv[1], {"image": torch.randn(2, 3, 32, 32, generator=g),
                       "input_ids": torch.tensor([[101, 2023, 2003, 1037], [101, 2054, 0, 0]]),
                       "attention_mask": torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]]),
                       "decoder_input_ids": torch.tensor([[101, 4937, 102], [101, 3899, 102]]),
                       "decoder_attention_mask": torch.ones(2, 3, dtype=torch.long)})
PY
for dev in cpu cuda; do
  "$BIN" forward --config configs/tiny.yaml --weights "$W/tiny.safetensors" --inputs "$W/in.safetensors" \
    --out "$W/out-$dev.safetensors" --device "$dev"
done
"$PY" - "$W/out-cpu.safetensors" "$W/out-cuda.safetensors" <<'PY' | tee -a "$LOG"
import sys, json
sys.path.insert(0, "tests/py")
from mplug_reference import st_read
a, b = st_read(sys.argv[1]), st_read(sys.argv[2])
worst = max(float((a[k].double() - b[k].double()).abs().max()) for k in a if a[k].is_floating_point())
print(json.dumps({"check": "cuda_vs_cpu_forward_tiny_fp32", "max_abs_diff": worst, "ok": worst < 1e-3}))
PY

step "bf16 matmul peak (8192^3, the MFU denominator)"
"$PY" - <<'PY' | tee -a "$LOG" | tee "$W/peak.json"
import json, time, torch
a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
for _ in range(3):
    a @ b
torch.cuda.synchronize()
t = time.perf_counter()
for _ in range(20):
    a @ b
torch.cuda.synchronize()
print(json.dumps({"check": "bf16_matmul_peak", "tflops": 2 * 8192**3 * 20 / (time.perf_counter() - t) / 1e12}))
PY

step "model forward+backward, bf16 (MFU: the step's FLOPs by torch's counter / time / peak)"
for spec in "mplug_base base 256 32" "mplug_large large 224 16"; do
  set -- $spec
  "$BIN" model bench --config "configs/$1.yaml" --image-res "$3" --batch "$4" --steps 10 --warmup 3 \
    --device cuda --dtype bf16 --no-dropout | tee -a "$LOG" > "$W/ours.json"
  "$PY" benches/torch_model.py --config "$2" --image-res "$3" --batch "$4" --steps 10 --warmup 3 \
    --device cuda --dtype bf16 | tee -a "$LOG" > "$W/torch.json"
  "$PY" - "$W/ours.json" "$W/torch.json" "$W/peak.json" "$2" <<'PY' | tee -a "$LOG"
import json, sys
ours, ref, peak = (json.loads(open(p).read().strip().splitlines()[-1]) for p in sys.argv[1:4])
flops, tf = ref["flops_per_step"], peak["tflops"] * 1e12
print(json.dumps({"check": f"fwd_bwd_{sys.argv[4]}_bf16", "speedup_vs_eager": ours["samples_per_s"] / ref["samples_per_s"],
                  "mfu_mplug": flops * ours["samples_per_s"] / ours["batch"] / tf,
                  "mfu_eager": flops * ref["samples_per_s"] / ref["batch"] / tf}))
PY
done

step "attention kernels SDPA picks for the model's shapes and masks, bf16"
"$PY" - <<'PY' | tee -a "$LOG"
import json, torch
from torch.nn.attention import SDPBackend
def pick(lq, lk, mask):
    q = torch.randn(32, 12, lq, 64, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(32, 12, lk, 64, device="cuda", dtype=torch.bfloat16)
    return SDPBackend(torch._fused_sdp_choice(q, k, k, mask, 0.1, False)).name
pad = torch.zeros(32, 1, 1, 40, device="cuda", dtype=torch.bfloat16)  # attention.rs: additive, q's dtype
causal = torch.zeros(32, 1, 40, 40, device="cuda", dtype=torch.bfloat16)
mem = torch.zeros(32, 1, 1, 297, device="cuda", dtype=torch.bfloat16)
print(json.dumps({"check": "sdpa_backends_bf16", "vit_no_mask": pick(257, 257, None),
                  "text_padding_mask": pick(40, 40, pad), "decoder_causal_mask": pick(40, 40, causal),
                  "decoder_cross_mask": pick(40, 297, mem)}))
PY
step "pre-training (mplug train), base @256, bf16 autocast, ITC+ITM+MLM+PrefixLM"
VOCAB=${MPLUG_VOCAB:-gpu-bin/vocab.txt}
"$BIN" synth --out "$W/raw" --images 1200 --size 320x320 --plain-jpeg --seed 3 >/dev/null
"$BIN" ingest coco --quiet --annotations "$W/raw/annotations/coco_karpathy_train.json" \
  --images "$W/raw/images" --out "$W/shapes" --max-side 288 --vocab "$VOCAB" >/dev/null
# The base pre-training run every measurement below shares: 64k queue, 14 loader threads, no checkpoints.
train_base() {
  "$BIN" train --config configs/pretrain_mplug_base.yaml --data "$W/shapes" --device cuda --quiet \
    --set queue_size=65536 --set train.checkpoint_every=1000 --set train.threads=14 "$@" >&2
}
for bs in 64 128; do
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 > "$W/mem.txt" 2>/dev/null &
  SMI=$!
  # metrics every 10 steps: the steps between lines never wait for the device (issue 20)
  train_base --out "$W/run$bs" --set batch_size=$bs --set train.max_steps=60 --set train.log_every=10
  "$PY" - "$W/run$bs/metrics.jsonl" "$W/mem.txt" "$bs" <<'PY' | tee -a "$LOG"
import sys, json, statistics
lines = [json.loads(l) for l in open(sys.argv[1])]
steady = [l["samples_per_s"] for l in lines[1:]]
mem = [int(x) for x in open(sys.argv[2]).read().split() if x.strip().isdigit()]
print(json.dumps({"check": "train_base_256_bf16", "batch": int(sys.argv[3]), "steps": len(lines),
                  "samples_per_s_median": statistics.median(steady), "loss_first": lines[0]["loss"],
                  "loss_last": lines[-1]["loss"], "starved_pct_last": lines[-1]["loader_starved_pct"],
                  "peak_gpu_mem_mib": max(mem) if mem else None}))
PY
  kill "$SMI" 2>/dev/null
  wait "$SMI" 2>/dev/null
done
step "where a pre-training step's time goes (train.profile: the device synchronised at each phase)"
train_base --out "$W/profile" --set batch_size=128 --set train.max_steps=20 --set train.profile=true
"$PY" - "$W/profile/metrics.jsonl" <<'PY' | tee -a "$LOG"
import sys, json, statistics
lines = [json.loads(l) for l in open(sys.argv[1])][5:]
med = lambda k: statistics.median(l[k] for l in lines)
print(json.dumps({"check": "train_base_256_bf16_phases", "batch": 128, "steps": len(lines),
                  **{k: med(k) for k in ("ms_data", "ms_forward", "ms_backward", "ms_optimizer",
                                         "host_reads_per_step", "samples_per_s")}}))
PY

step "evaluation (mplug eval caption / vqa), base @384, fp32: KV cache vs re-running the prefix"
"$BIN" ingest vqa --quiet --annotations "$W"/raw/vqa/*.json --images "$W/raw/images" --out "$W/vqa" \
  --max-side 384 --vocab "$VOCAB" >/dev/null
"$BIN" model init --config configs/caption_mplug_base.yaml --out "$W/base_eval.safetensors" >/dev/null
for task in caption vqa; do
  if [ "$task" = caption ]; then data=$W/shapes; else data=$W/vqa; fi
  for mode in cache no-cache; do
    extra=(); [ "$mode" = no-cache ] && extra=(--no-kv-cache)
    "$BIN" eval "$task" --quiet --device cuda --config "configs/${task}_mplug_base.yaml" \
      --weights "$W/base_eval.safetensors" --data "$data" --split train --limit 512 --batch-size 64 \
      --vocab "$VOCAB" --save-tokens --out "$W/eval-$task-$mode" "${extra[@]}" >&2
    "$PY" - "$W/eval-$task-$mode" "$task" "$mode" <<'PY' | tee -a "$LOG"
import json, sys
p = json.load(open(sys.argv[1] + "/metrics.json"))["provenance"]
toks = sum(len(t["tokens"]) - 1 for t in json.load(open(sys.argv[1] + "/tokens.json")))
print(json.dumps({"check": f"eval_{sys.argv[2]}_base_384", "kv_cache": sys.argv[3] == "cache",
                  "items": p["items"], "items_per_s": p["items"] / p["seconds"],
                  "tokens_per_s": toks / p["seconds"]}))
PY
  done
done

step "VQA fine-tuning (mplug finetune vqa), base @384, bf16 autocast, batch 32"
"$BIN" finetune vqa --config configs/vqa_mplug_base.yaml --init "$W/base_eval.safetensors" \
  --data "$W/vqa" --out "$W/ft_vqa" --device cuda --quiet --vocab "$VOCAB" --set batch_size_train=32 \
  --set train.max_steps=60 --set train.log_every=10 --set train.checkpoint_every=1000 \
  --set train.threads=14 >&2
"$PY" - "$W/ft_vqa/metrics.jsonl" <<'PY' | tee -a "$LOG"
import sys, json, statistics
lines = [json.loads(l) for l in open(sys.argv[1])]
print(json.dumps({"check": "finetune_vqa_base_384_bf16", "batch": 32, "steps": 10 * len(lines),
                  "samples_per_s_median": statistics.median(l["samples_per_s"] for l in lines[1:]),
                  "loss_first": lines[0]["loss_vqa"], "loss_last": lines[-1]["loss_vqa"],
                  "starved_pct_last": lines[-1]["loader_starved_pct"]}))
PY

step "NCCL, world size 1, through the same code path as N GPUs (mplug launch --nproc 1)"
"$BIN" launch --nproc 1 -- "$BIN" doctor --collectives --device cuda --bytes 256MiB | tee -a "$LOG"
"$BIN" launch --nproc 1 -- "$BIN" train --config configs/pretrain_mplug_base.yaml --data "$W/shapes" \
  --device cuda --quiet --out "$W/ddp1" --set queue_size=65536 --set train.checkpoint_every=1000 \
  --set train.threads=14 --set batch_size=128 --set train.max_steps=20 --set train.profile=true >&2
"$PY" - "$W/ddp1/metrics.jsonl" <<'PY' | tee -a "$LOG"
import sys, json, statistics
lines = [json.loads(l) for l in open(sys.argv[1])][5:]
med = lambda k: statistics.median(l[k] for l in lines)
step_ms = sum(med(k) for k in ("ms_data", "ms_forward", "ms_backward", "ms_all_reduce", "ms_optimizer"))
print(json.dumps({"check": "train_base_256_bf16_nccl_world1", "batch": 128, "steps": len(lines),
                  "ms_all_reduce": med("ms_all_reduce"), "all_reduce_share": med("ms_all_reduce") / step_ms,
                  "samples_per_s": med("samples_per_s")}))
PY
rm -rf "$W"
