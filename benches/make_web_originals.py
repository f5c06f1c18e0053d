"""Builds a web-originals benchmark set from real photographs: N random crops whose long side is
1000-3000 px (what CC3M/CC12M/SBU URLs serve: phone and stock photos), a third saved progressive,
JPEG q85-95, plus a CC3M-style list `caption<TAB>url` pointing at a loopback server.

  make_web_originals.py PHOTO... --out DIR --n N --base http://127.0.0.1:PORT [--seed S]
"""
import argparse
import os
import random

from PIL import Image

ap = argparse.ArgumentParser()
ap.add_argument('photos', nargs='+')
ap.add_argument('--out', required=True)
ap.add_argument('--n', type=int, default=300)
ap.add_argument('--base', required=True)
ap.add_argument('--seed', type=int, default=0)
a = ap.parse_args()

rng = random.Random(a.seed)
srcs = [Image.open(p).convert('RGB') for p in a.photos]
os.makedirs(os.path.join(a.out, 'img'), exist_ok=True)
lines = []
total = 0
for i in range(a.n):
    src = srcs[i % len(srcs)]
    long_side = rng.randint(1000, 3000)
    aspect = rng.uniform(0.6, 1.6)
    w, h = (long_side, int(long_side / aspect)) if aspect >= 1 else (int(long_side * aspect), long_side)
    w, h = min(w, src.width), min(h, src.height)
    x, y = rng.randint(0, src.width - w), rng.randint(0, src.height - h)
    crop = src.crop((x, y, x + w, y + h))
    name = f'{i:06d}.jpg'
    path = os.path.join(a.out, 'img', name)
    crop.save(path, quality=rng.randint(85, 95), progressive=(i % 3 == 0))
    total += os.path.getsize(path)
    lines.append(f'a photo number {i}\t{a.base}/img/{name}')
with open(os.path.join(a.out, 'Train_GCC-training.tsv'), 'w') as f:
    f.write('\n'.join(lines) + '\n')
with open(os.path.join(a.out, 'img2dataset.tsv'), 'w') as f:
    f.write('caption\turl\n' + '\n'.join(lines) + '\n')
print(f'{a.n} images, {total / 2**20:.1f} MiB')
