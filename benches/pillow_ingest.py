"""The Python baseline a user would write for `mplug ingest coco`: Pillow decode, EXIF transpose,
convert to RGB, resize (longest side <= MAX_SIDE, BICUBIC), re-encode JPEG q95, collect rows and
write one zstd Parquet file with pyarrow. Single process (per-core figure).

  pillow_ingest.py ANNOTATIONS.json IMAGES_DIR OUT.parquet [--max-side 512] [--decode-only]
Prints a JSON line with images, seconds, images/s, images per CPU-second and source megapixels/s.
"""
import argparse
import io
import json
import os
import time

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageOps

ap = argparse.ArgumentParser()
ap.add_argument('annotations')
ap.add_argument('images')
ap.add_argument('out')
ap.add_argument('--max-side', type=int, default=512)
ap.add_argument('--decode-only', action='store_true')
a = ap.parse_args()

d = json.load(open(a.annotations))
caps = {}
for ann in d['annotations']:
    caps.setdefault(ann['image_id'], []).append(ann['caption'])
sub = os.path.basename(a.annotations)[len('captions_'):-len('.json')]

t0 = time.perf_counter()
c0 = time.process_time()
rows = {'image_id': [], 'image': [], 'width': [], 'height': [], 'captions': []}
mpix = 0.0
for im_rec in d['images']:
    path = os.path.join(a.images, sub, im_rec['file_name'])
    im = Image.open(path)
    im = ImageOps.exif_transpose(im).convert('RGB')
    mpix += im.width * im.height / 1e6
    if a.decode_only:
        continue
    w, h = im.size
    s = a.max_side / max(w, h)
    if s < 1:
        im = im.resize((max(1, round(w * s)), max(1, round(h * s))), Image.BICUBIC)
    buf = io.BytesIO()
    im.save(buf, format='JPEG', quality=95)
    rows['image_id'].append(str(im_rec['id']))
    rows['image'].append(buf.getvalue())
    rows['width'].append(im.width)
    rows['height'].append(im.height)
    rows['captions'].append(caps.get(im_rec['id'], []))
if not a.decode_only:
    pq.write_table(pa.table(rows), a.out, compression='zstd', row_group_size=512)
dt = time.perf_counter() - t0
cpu = time.process_time() - c0
n = len(d['images'])
print(json.dumps({'images': n, 'seconds': round(dt, 3), 'images_per_s': round(n / dt, 1),
                  'images_per_cpu_s': round(n / cpu, 1), 'source_mpix_per_s': round(mpix / dt, 1)}))
