"""Writes a metadata-heavy mplug dataset for SQL benchmarks: ROWS rows of the image_text.v1 schema
(tiny placeholder `image` bytes, 5 captions and their token ids per row) in 4 zstd shards, plus a
manifest.json so `mplug sql` discovers it. Deterministic for a given seed.

  make_sql_bench.py --out DIR --rows 1000000 [--seed 0] [--name t]
"""
import argparse
import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ap = argparse.ArgumentParser()
ap.add_argument('--out', required=True)
ap.add_argument('--rows', type=int, default=1_000_000)
ap.add_argument('--seed', type=int, default=0)
ap.add_argument('--name', default='t', help='dataset (table) name')
a = ap.parse_args()
rng = np.random.default_rng(a.seed)
colours = ['red', 'green', 'blue', 'yellow', 'purple', 'orange']
shapes = ['circle', 'square', 'triangle']
os.makedirs(os.path.join(a.out, 'shards'), exist_ok=True)
shards = []
per = a.rows // 4
for s in range(4):
    n = per if s < 3 else a.rows - 3 * per
    ids = np.arange(s * per, s * per + n)
    split = np.where(rng.random(n) < 0.8, 'train', np.where(rng.random(n) < 0.5, 'val', 'test'))
    w = rng.integers(160, 801, n).astype(np.int32)
    h = rng.integers(160, 801, n).astype(np.int32)
    c = rng.integers(0, 6, (n, 5))
    sh = rng.integers(0, 3, (n, 5))
    caps = [[f'a {colours[c[i, k]]} {shapes[sh[i, k]]} on a white background' for k in range(5)] for i in range(n)]
    toks = [[[1037, 2000 + int(c[i, k]), 3000 + int(sh[i, k]), 2006, 1037, 2317, 4281] for k in range(5)] for i in range(n)]
    t = pa.table({
        'image_id': pa.array([f'coco_{i}' for i in ids], pa.string()),
        'split': pa.array(split, pa.string()),
        'source_path': pa.array([f'train2017/{i:012d}.jpg' for i in ids], pa.string()),
        'source_blake3': pa.array(['0' * 64] * n, pa.string()),
        'pixel_blake3': pa.array(['0' * 64] * n, pa.string()),
        'orig_width': pa.array(w), 'orig_height': pa.array(h),
        'width': pa.array(np.minimum(w, 512)), 'height': pa.array(np.minimum(h, 512)),
        'image_codec': pa.array(['jpeg'] * n, pa.string()),
        'image': pa.array([b'\xff\xd8'] * n, pa.binary()),
        'captions': pa.array(caps, pa.list_(pa.string())),
        'caption_tokens': pa.array(toks, pa.list_(pa.list_(pa.int32()))),
    })
    path = os.path.join(a.out, 'shards', f'part-{s:05d}.parquet')
    pq.write_table(t, path, compression='zstd', row_group_size=65536)
    shards.append({'path': f'shards/part-{s:05d}.parquet', 'rows': n, 'bytes': os.path.getsize(path),
                   'row_groups': pq.ParquetFile(path).metadata.num_row_groups, 'blake3': '0' * 64})
z = '0' * 64
manifest = {
    'format': 'mplug.dataset', 'format_version': 1, 'name': a.name,
    'schema': 'image_text.v1', 'tool': {'name': 'mplug', 'version': 'bench'}, 'pipeline': {},
    'pipeline_blake3': z, 'vocab': None,
    'sources': {'annotations': [], 'images': {'files': 0, 'bytes': 0, 'blake3': z}},
    'shards': shards, 'rejects': [],
    'totals': {'images_seen': a.rows, 'images_written': a.rows, 'images_rejected': 0,
               'captions_written': 5 * a.rows, 'captions_rejected': 0, 'shards': 4,
               'shard_bytes': sum(s['bytes'] for s in shards)},
    'dataset_blake3': z,
}
json.dump(manifest, open(os.path.join(a.out, 'manifest.json'), 'w'), indent=2)
