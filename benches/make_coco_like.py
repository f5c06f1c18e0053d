"""Builds a COCO-like benchmark set from real photographs: N random 640x480 crops (35-100% scale),
flips, brightness jitter and sensor noise, saved as baseline JPEG q90 with 4:2:0 (what COCO holds),
plus an official-layout captions_val2017.json. Deterministic for a given seed.

  make_coco_like.py PHOTO... --out DIR --n N [--seed S]
"""
import argparse
import json
import os
import random

import numpy as np
from PIL import Image, ImageEnhance

ap = argparse.ArgumentParser()
ap.add_argument('photos', nargs='+')
ap.add_argument('--out', required=True)
ap.add_argument('--n', type=int, default=500)
ap.add_argument('--seed', type=int, default=0)
a = ap.parse_args()

rng = random.Random(a.seed)
nrng = np.random.default_rng(a.seed)
srcs = [Image.open(p).convert('RGB') for p in a.photos]
img_dir = os.path.join(a.out, 'images', 'val2017')
os.makedirs(img_dir, exist_ok=True)
images, anns = [], []
for i in range(a.n):
    src = srcs[i % len(srcs)]
    scale = rng.uniform(0.35, 1.0)
    cw = int(min(src.width, src.height * 4 / 3) * scale)
    ch = int(cw * 3 / 4)
    x0, y0 = rng.randint(0, src.width - cw), rng.randint(0, src.height - ch)
    im = src.crop((x0, y0, x0 + cw, y0 + ch)).resize((640, 480), Image.BICUBIC)
    if rng.random() < 0.5:
        im = im.transpose(Image.FLIP_LEFT_RIGHT)
    im = ImageEnhance.Brightness(im).enhance(rng.uniform(0.8, 1.2))
    arr = np.asarray(im).astype(np.float32) + nrng.normal(0, 2.0, (480, 640, 3))
    im = Image.fromarray(arr.clip(0, 255).astype(np.uint8))
    name = f'{i + 1:012d}.jpg'
    im.save(os.path.join(img_dir, name), quality=90, subsampling=2)
    images.append({'id': i + 1, 'file_name': name, 'width': 640, 'height': 480})
    anns.append({'id': i + 1, 'image_id': i + 1, 'caption': f'a photograph, crop number {i + 1}'})
os.makedirs(os.path.join(a.out, 'annotations'), exist_ok=True)
with open(os.path.join(a.out, 'annotations', 'captions_val2017.json'), 'w') as f:
    json.dump({'images': images, 'annotations': anns}, f)
