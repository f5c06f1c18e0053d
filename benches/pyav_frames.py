#!/usr/bin/env python3
"""Python baseline for video ingest: what a user writes with PyAV + Pillow, on the same clips and
settings as `mplug ingest msrvtt`: open each clip, decode its frames, keep the reference's uniform
indices (np.arange(0, vlen, vlen/N, dtype=int)), resize to SxS bicubic, encode JPEG q95.

Two variants: `decode-all` (decode every frame, index into the list: the common pattern) and `seek`
(seek to the keyframe before each wanted frame, decode forward: what decord's get_batch does).
One process, one decoder thread; prints clips/s and frames/s per CPU-second as JSON.

    pyav_frames.py VIDEO_DIR --frames 12 --size 224 [--mode decode-all|seek]
"""
import argparse
import glob
import io
import json
import os
import time

import av
import numpy as np
from PIL import Image


def wanted(vlen, n):
    return np.arange(0, vlen, vlen / n, dtype=int).tolist()


def decode_all(path, n, size):
    with av.open(path) as c:
        s = c.streams.video[0]
        s.thread_type = "NONE"
        frames = [f.to_image() for f in c.decode(s)]
    return [frames[i] for i in wanted(len(frames), n)]


def seek(path, n, size):
    with av.open(path) as c:
        s = c.streams.video[0]
        s.thread_type = "NONE"
        pts = sorted(p.pts for p in c.demux(s) if p.pts is not None)
        out = []
        for i in wanted(len(pts), n):
            c.seek(pts[i], stream=s, backward=True, any_frame=False)
            for f in c.decode(s):
                if f.pts >= pts[i]:
                    out.append(f.to_image())
                    break
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("videos")
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--mode", choices=["decode-all", "seek"], default="decode-all")
    a = ap.parse_args()
    paths = sorted(p for p in glob.glob(os.path.join(a.videos, "**", "*"), recursive=True) if os.path.isfile(p))
    fn = decode_all if a.mode == "decode-all" else seek
    t0, c0 = time.perf_counter(), time.process_time()
    total = 0
    for p in paths:
        for img in fn(p, a.frames, a.size):
            small = img.convert("RGB").resize((a.size, a.size), Image.BICUBIC)
            buf = io.BytesIO()
            small.save(buf, "JPEG", quality=95)
            total += 1
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"impl": f"pyav+pillow {a.mode}", "clips": len(paths), "frames": total,
                      "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
                      "clips_per_cpu_s": round(len(paths) / cpu, 2), "frames_per_cpu_s": round(total / cpu, 1)}))


if __name__ == "__main__":
    main()
