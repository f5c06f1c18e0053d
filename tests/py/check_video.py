#!/usr/bin/env python3
"""Independent check of a video_text.v1 dataset written by `mplug ingest msrvtt|msvd-qa|vatex` on the
synthetic clips of `mplug synth --video`.

Oracles: pyarrow reads the shards; numpy's own `np.arange(0, vlen, vlen/N, dtype=int)` (the reference's
call in dataset/video_dataset.py) gives the expected frame indices; Pillow decodes every stored frame;
the synthetic scene definition (a 16-px square crossing a 320x240 frame every 2 s, colour and direction
stated in the captions/answers) says where the square must be at each stored frame time; the raw
annotation files give the expected captions and questions.

    check_video.py DATASET_DIR --frames N --size S --kind msrvtt|msrvtt-qa|msvd|vatex --annotations F...
Prints a JSON summary; exits non-zero with a message on the first mismatch.
"""
import argparse
import glob
import io
import json
import sys

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

COLOURS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (50, 80, 230), "yellow": (230, 220, 40)}


def fail(msg):
    print(f"MISMATCH: {msg}", file=sys.stderr)
    sys.exit(1)


def colour_and_direction(texts):
    for t in texts:
        words = t.lower().replace("?", "").split()
        col = next((w for w in words if w in COLOURS), None)
        d = next((w for w in words if w in ("left", "right")), None)
        if col and d:
            return col, d
    return None, None


def square_x(t, rightwards, width=320, side=16):
    p = (t / 2.0) % 1.0
    x = p * (width - side) if rightwards else (1.0 - p) * (width - side)
    return x + (side - 1) / 2.0


def centroid(img, rgb):
    a = np.asarray(img).astype(int)
    d = np.abs(a - np.array(rgb)).sum(axis=2)
    ys, xs = np.nonzero(d < 90)
    if len(xs) < 8:
        return None
    return xs.mean(), ys.mean()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset")
    ap.add_argument("--frames", type=int, required=True)
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--kind", required=True)
    ap.add_argument("--annotations", nargs="*", default=[])
    a = ap.parse_args()
    files = sorted(glob.glob(f"{a.dataset}/shards/*.parquet"))
    table = pq.read_table(files)
    rows = table.to_pylist()
    manifest = json.load(open(f"{a.dataset}/manifest.json"))
    if len(rows) != manifest["totals"]["images_written"]:
        fail(f"{len(rows)} rows, manifest says {manifest['totals']['images_written']}")
    checked_frames = 0
    for r in rows:
        vid = r["video_id"]
        n, vlen = a.frames, r["num_frames_total"]
        want = np.arange(0, vlen, vlen / n, dtype=int).tolist()
        if r["frame_indices"] != want:
            fail(f"{vid}: frame_indices {r['frame_indices']} != numpy {want}")
        if not (len(r["frames"]) == len(r["frame_times"]) == n):
            fail(f"{vid}: {len(r['frames'])} frames / {len(r['frame_times'])} times, want {n}")
        col, direction = colour_and_direction(r["captions"] + [f"{q} {ans}" for q, ans in zip(r["questions"], r["answers"])] + [" ".join(r["answers"])])
        if col is None:
            fail(f"{vid}: no colour/direction in texts {r['captions'][:1]} {r['answers']}")
        for k, (blob, t) in enumerate(zip(r["frames"], r["frame_times"])):
            img = Image.open(io.BytesIO(blob))
            if img.format != "JPEG" or img.size != (a.size, a.size):
                fail(f"{vid} frame {k}: {img.format} {img.size}, want JPEG {a.size}x{a.size}")
            if "progressive" in img.info:
                fail(f"{vid} frame {k}: progressive JPEG")
            c = centroid(img.convert("RGB"), COLOURS[col])
            if c is None:
                fail(f"{vid} frame {k}: no {col} square")
            # displayed frames are 320x240, stored square S x S (aspect not kept)
            want_x = square_x(t, direction == "right") * a.size / 320
            want_y = (240 - 16) / 2 + 7.5
            want_y = want_y * a.size / 240
            if abs(c[0] - want_x) > 2.5 or abs(c[1] - want_y) > 2.5:
                fail(f"{vid} frame {k} (t={t:.3f}): square at ({c[0]:.1f}, {c[1]:.1f}), want ({want_x:.1f}, {want_y:.1f})")
            checked_frames += 1
    # texts against the raw annotation files
    if a.kind == "msrvtt":
        info = json.load(open(a.annotations[0]))
        caps = {}
        for s in info["sentences"]:
            caps.setdefault(s["video_id"], []).append(s["caption"])
        for r in rows:
            if r["split"] != "test_1k_a" and r["captions"] != caps[r["video_id"]]:
                fail(f"{r['video_id']}: captions differ from the annotation file")
    if a.kind in ("msrvtt-qa", "msvd"):
        expected = 0
        for f in a.annotations:
            if f.endswith("_qa.json"):
                expected += len(json.load(open(f)))
        got = sum(len(r["questions"]) for r in rows)
        if got != expected:
            fail(f"{got} questions in shards, {expected} in the files")
    if a.kind == "vatex":
        want = {}
        for f in a.annotations:
            for item in json.load(open(f)):
                want[item["videoID"]] = item["enCap"]
        for r in rows:
            if r["captions"] != want[r["video_id"]]:
                fail(f"{r['video_id']}: captions differ")
    print(json.dumps({"rows": len(rows), "frames_checked": checked_frames}))


if __name__ == "__main__":
    main()
