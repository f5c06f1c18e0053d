#!/usr/bin/env bash
# Loader throughput, side by side on the same images and machine: `mplug loader bench` (release,
# shards from `mplug ingest coco`) vs a torch DataLoader over the reference-style dataset (json +
# the JPEG files + Pillow + torchvision transforms, benches/torch_loader.py), same workers, batch
# 64, 384 px with training augmentation; plus mplug without augmentation. Copy into BENCHMARKS.md.
#
#   scripts/bench-loader.sh [N_IMAGES]     (default 500; the COCO-like set of bench-ingest.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-500}"
scripts/setup.sh >/dev/null
# shellcheck source=/dev/null
source .mplug-env
PY="$MPLUG_PYTHON"
WORK="${MPLUG_BENCH_DIR:-$HOME/.cache/mplug/bench}"
SET="$WORK/coco_like_$N"
if [ ! -f "$WORK/photos/Kleiber_by_Lukas_Baubkus.jpg" ]; then
  mkdir -p "$WORK"
  (cd "$WORK" && apt-get download -q lomiri-wallpapers-20.04 >/dev/null && dpkg-deb -x lomiri-wallpapers-20.04_*.deb pkg)
  mkdir -p "$WORK/photos"
  cp "$WORK"/pkg/usr/share/backgrounds/{Kleiber_by_Lukas_Baubkus,Infinite-Sea_by_Aury88}.jpg "$WORK/photos/"
fi
if [ ! -f "$SET/annotations/captions_val2017.json" ]; then
  "$PY" benches/make_coco_like.py "$WORK"/photos/*.jpg --out "$SET" --n "$N"
fi
"$PY" -c "import torchvision" 2>/dev/null || "$PY" -m pip install -q --no-deps "torchvision==0.26.0"
cargo build --release --quiet --bin mplug
M="$CARGO_TARGET_DIR/release/mplug"
# ALBEF-style list for the PyTorch dataset (image path relative to the image root, captions list).
"$PY" - "$SET" <<'PYEOF'
import json, sys, collections
s = sys.argv[1]
c = json.load(open(f'{s}/annotations/captions_val2017.json'))
caps = collections.defaultdict(list)
for a in c['annotations']:
    caps[a['image_id']].append(a['caption'])
out = [{'image': 'val2017/' + i['file_name'], 'caption': caps[i['id']]} for i in c['images']]
json.dump(out, open(f'{s}/albef_pretrain.json', 'w'))
PYEOF
"$M" ingest coco --annotations "$SET/annotations/captions_val2017.json" --images "$SET/images" \
  --out "$WORK/loader_shards" --quiet --force >/dev/null
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "images:  $N COCO-like 640x480 JPEGs; mplug reads its shards (stored at 512 px, JPEG q95)"
W=$(nproc)
for run in 1 2; do
  echo "== run $run: batch 64, 384 px, $W workers"
  echo -n "  torch DataLoader (RandomResizedCrop+flip): "
  "$PY" benches/torch_loader.py "$SET/albef_pretrain.json" "$SET/images" --workers "$W" --batches 30
  echo -n "  mplug loader (RandomResizedCrop+flip):     "
  "$M" loader bench --data "$WORK/loader_shards" --threads "$W" --batches 30 | tail -n1
  echo -n "  torch DataLoader (+ RandomAugment(2,7)):   "
  "$PY" benches/torch_loader.py "$SET/albef_pretrain.json" "$SET/images" --workers "$W" --batches 30 --randaugment
  echo -n "  mplug loader (+ RandomAugment(2,7)):       "
  "$M" loader bench --data "$WORK/loader_shards" --threads "$W" --batches 30 --randaugment | tail -n1
  echo -n "  mplug loader (no augmentation):            "
  "$M" loader bench --data "$WORK/loader_shards" --threads "$W" --batches 30 --eval | tail -n1
  echo -n "  torch DataLoader (no augmentation):        "
  "$PY" benches/torch_loader.py "$SET/albef_pretrain.json" "$SET/images" --workers "$W" --batches 30 --eval
done
