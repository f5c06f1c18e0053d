"""Independent checks of an mplug dataset, run by tests/it/ingest.rs with the project venv's Python.

Nothing here imports mplug: the oracles are pyarrow, DuckDB, Pillow, Hugging Face `tokenizers`,
`jsonschema`, and a transcription of the reference's `pre_caption` (mPLUG dataset/utils.py).
Each mode exits non-zero with a message on the first mismatch.

  check_dataset.py readers DATASET VOCAB ANNOTATION.json...
  check_dataset.py pixels DATASET IMAGES_DIR MAX_ABS_DIFF MAX_FRACTION_OVER_1
"""
import glob
import io
import json
import os
import re
import sys


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def pre_caption(caption, max_words):
    # mPLUG dataset/utils.py, verbatim logic
    caption = re.sub(r"([,.'!?\"()*#:;~])", '', caption.lower()).replace('-', ' ').replace('/', ' ').replace('<person>', 'person')
    caption = re.sub(r"\s{2,}", ' ', caption)
    caption = caption.rstrip('\n')
    caption = caption.strip(' ')
    words = caption.split(' ')
    if len(words) > max_words:
        caption = ' '.join(words[:max_words])
    return caption


def raw_captions(files):
    """image path -> captions, from the annotation files (official / Karpathy / ALBEF layouts)."""
    out = {}
    for f in files:
        d = json.load(open(f))
        if isinstance(d, list):
            for r in d:
                caps = r['caption'] if isinstance(r['caption'], list) else [r['caption']]
                out.setdefault(r['image'], []).extend(caps)
        elif 'annotations' in d:
            sub = os.path.basename(f)[len('captions_'):-len('.json')]
            names = {im['id']: sub + '/' + im['file_name'] for im in d['images']}
            for a in d['annotations']:
                out.setdefault(names[a['image_id']], []).append(a['caption'])
        else:
            for im in d['images']:
                out[im['filepath'] + '/' + im['filename']] = [s['raw'] for s in im['sentences']]
    return out


def readers(dataset, vocab, annotation_files):
    import duckdb
    import jsonschema
    import pyarrow.parquet as pq
    from tokenizers import BertWordPieceTokenizer

    manifest = json.load(open(os.path.join(dataset, 'manifest.json')))
    here = os.path.dirname(os.path.abspath(__file__))
    schema = json.load(open(os.path.join(here, '..', '..', 'schemas', 'manifest.v1.schema.json')))
    jsonschema.validate(manifest, schema)

    files = sorted(glob.glob(os.path.join(dataset, 'shards', '*.parquet')))
    if [os.path.relpath(f, dataset) for f in files] != [s['path'] for s in manifest['shards']]:
        fail('shard files on disk differ from the manifest')
    table = pq.read_table(files)
    n_manifest = manifest['totals']['images_written']
    if table.num_rows != n_manifest:
        fail(f'pyarrow reads {table.num_rows} rows, manifest says {n_manifest}')
    glob_path = os.path.join(dataset, 'shards', '*.parquet')
    n_duck = duckdb.sql(f"SELECT count(*) FROM '{glob_path}'").fetchall()[0][0]
    caps_duck = duckdb.sql(f"SELECT sum(len(captions)) FROM '{glob_path}'").fetchall()[0][0]
    if n_duck != n_manifest or caps_duck != manifest['totals']['captions_written']:
        fail(f'duckdb reads {n_duck} rows / {caps_duck} captions, manifest says {n_manifest} / '
             f"{manifest['totals']['captions_written']}")

    # captions equal the annotation files; tokens equal HF tokenizers on the reference pre_caption
    expected = raw_captions(annotation_files)
    tok = BertWordPieceTokenizer(vocab, lowercase=True)
    max_words = manifest['pipeline']['pipeline']['text']['max_words']
    for row in table.select(['source_path', 'captions', 'caption_tokens']).to_pylist():
        want = [c for c in expected[row['source_path']] if isinstance(c, str) and c.strip()]
        if row['captions'] != want:
            fail(f"captions of {row['source_path']}: {row['captions']} != {want}")
        for cap, ids in zip(row['captions'], row['caption_tokens']):
            ref = tok.encode(pre_caption(cap, max_words), add_special_tokens=False).ids
            if ids != ref:
                fail(f'tokens of {cap!r}: {ids} != {ref}')

    # Parquet layout: zstd everywhere except JPEG bytes (already compressed), statistics on metadata
    # columns only
    codec = manifest['pipeline']['pipeline']['image']['codec']
    for f in files:
        md = pq.ParquetFile(f).metadata
        for g in range(md.num_row_groups):
            rg = md.row_group(g)
            for c in range(rg.num_columns):
                col = rg.column(c)
                want = 'UNCOMPRESSED' if (col.path_in_schema == 'image' and codec == 'jpeg') else 'ZSTD'
                if col.compression != want:
                    fail(f'{f}: column {col.path_in_schema} is {col.compression}, expected {want}')
                has_stats = col.is_stats_set and col.statistics is not None and col.statistics.has_min_max
                if col.path_in_schema == 'image' and has_stats:
                    fail(f'{f}: image column has statistics')
                if col.path_in_schema in ('image_id', 'width', 'split') and not has_stats:
                    fail(f'{f}: column {col.path_in_schema} lacks statistics')

    # stored images: baseline JPEG (SOF0), within max_side, never upscaled
    from PIL import Image
    max_side = manifest['pipeline']['pipeline']['image']['max_side']
    cols = ['image_codec', 'image', 'width', 'height', 'orig_width', 'orig_height']
    for row in table.select(cols).to_pylist():
        w, h = row['width'], row['height']
        if max_side and max(w, h) > max_side:
            fail(f'stored {w}x{h} exceeds max_side {max_side}')
        if w > row['orig_width'] or h > row['orig_height']:
            fail(f"upscaled {row['orig_width']}x{row['orig_height']} to {w}x{h}")
        if row['image_codec'] == 'jpeg':
            data = row['image']
            if b'\xff\xc2' in data[:data.find(b'\xff\xda')] or b'\xff\xc0' not in data[:data.find(b'\xff\xda')]:
                fail('stored JPEG is not baseline (no SOF0 before the first scan)')
            im = Image.open(io.BytesIO(data))
            if im.size != (w, h) or im.mode != 'RGB':
                fail(f'stored JPEG is {im.mode} {im.size}, row says {w}x{h}')
    print(json.dumps({'rows': table.num_rows, 'shards': len(files)}))


def dhash(im):
    """The schema's pixel_dhash, from its definition: Pillow L luma, 9x8 bins by integer pixel
    assignment (x * 9 // w, y * 8 // h), bit = left bin mean > right bin mean, row-major, MSB first."""
    import numpy as np
    luma = np.asarray(im.convert('L'), dtype=np.float64)
    h, w = luma.shape
    cols = np.arange(w) * 9 // w
    rows = np.arange(h) * 8 // h
    means = np.zeros((8, 9))
    for r in range(8):
        band = luma[rows == r]
        for c in range(9):
            means[r, c] = band[:, cols == c].mean()
    bits = ''.join('1' if means[r, c] > means[r, c + 1] else '0' for r in range(8) for c in range(8))
    return '%016x' % int(bits, 2)


def pixels(dataset, images_dir, tolerance, max_fraction_over_1):
    """codec=raw datasets: each row's pixels vs Pillow's exif_transpose + convert('RGB') (+ BICUBIC).

    Fails if any value differs by more than `tolerance`, or if more than `max_fraction_over_1` of all
    values differ by more than one level."""
    import numpy as np
    import pyarrow.parquet as pq
    from PIL import Image, ImageOps

    table = pq.read_table(sorted(glob.glob(os.path.join(dataset, 'shards', '*.parquet'))))
    worst = {}
    values = over_1 = 0
    dhash_checked = 0
    for row in table.select(['source_path', 'image_codec', 'image', 'width', 'height',
                             'pixel_dhash']).to_pylist():
        if row['image_codec'] != 'raw':
            fail('pixels mode needs a --codec raw dataset')
        src = Image.open(os.path.join(images_dir, row['source_path']))
        kind = f'{src.format}/{src.mode}' + ('/exif' if src.getexif().get(0x0112, 1) != 1 else '')
        ref = ImageOps.exif_transpose(src).convert('RGB')
        if row['pixel_dhash'] != dhash(ref):
            fail(f"pixel_dhash of {row['source_path']}: {row['pixel_dhash']} != {dhash(ref)}")
        dhash_checked += 1
        if ref.size != (row['width'], row['height']):
            ref = ref.resize((row['width'], row['height']), Image.BICUBIC)
        ours = np.frombuffer(row['image'], dtype=np.uint8).reshape(row['height'], row['width'], 3)
        d = np.abs(ours.astype(int) - np.asarray(ref).astype(int))
        values += d.size
        over_1 += int((d > 1).sum())
        worst[kind] = max(worst.get(kind, 0), int(d.max()))
    print(json.dumps({'max_abs_diff': worst, 'fraction_over_1': over_1 / max(values, 1),
                      'dhash_checked': dhash_checked}, sort_keys=True))
    if over_1 / max(values, 1) > max_fraction_over_1:
        fail(f'{over_1} of {values} values differ from Pillow by more than 1')
    bad = {k: v for k, v in worst.items() if v > tolerance}
    if bad:
        fail(f'max abs difference vs Pillow above {tolerance}: {bad}')


if __name__ == '__main__':
    mode = sys.argv[1]
    if mode == 'readers':
        readers(sys.argv[2], sys.argv[3], sys.argv[4:])
    elif mode == 'pixels':
        pixels(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
    else:
        fail('unknown mode ' + mode)
