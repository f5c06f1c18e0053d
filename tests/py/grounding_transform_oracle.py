#!/usr/bin/env python3
"""Replays grounding training transforms with Pillow, as TransVG's vg_transforms.py applies them
(reference §4.3), for tests/it/finetune_grounding.rs.

  grounding_transform_oracle.py CASES.json OUT.json

Each case: `image` (hex of uint8 RGB, `width` × `height`), `box` [x1, y1, x2, y2] in its pixels,
`text`, `size` (S), and `trace`: the random choices the Rust transform made (crop branch, short
side, crop region, long side, colour jitter ops with factors in order, flip, canvas top/left).
The replay: (b) short-side resize (PIL bilinear, Python-rounded sizes, box × ratio), crop (box
shifted, min'd with the crop size, clamped at 0) after checking the reference's acceptance rule
(box centre x > top, centre y > left); long-side resize; ImageEnhance Brightness / Contrast / Color;
FLIP_LEFT_RIGHT with the box mirrored and `left`↔`right` swapped as substrings; the image pasted at
(left, top) of a zero S×S canvas, the box shifted, (cx, cy, w, h) / S. Boxes are float32 tensors,
as the reference's. Writes, per case, the canvas (hex), the target and the text.
"""
import json
import sys

import torch
from PIL import Image, ImageEnhance


def resize(img, box, ratio):
    w, h = img.size
    img = img.resize((round(w * ratio), round(h * ratio)), Image.BILINEAR)
    return img, box * ratio


def main():
    cases = json.load(open(sys.argv[1]))
    out = []
    for c in cases:
        img = Image.frombytes("RGB", (c["width"], c["height"]), bytes.fromhex(c["image"]))
        box = torch.tensor(c["box"], dtype=torch.float32)
        text, S, t = c["text"], c["size"], c["trace"]
        if t["crop_branch"]:
            img, box = resize(img, box, float(t["short_side"] / float(min(img.size))))
            if t["crop"] is not None:
                i, j, h, w = t["crop"]
                cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
                assert cx > i and cy > j, "the reference's acceptance rule"
                img = img.crop((j, i, j + w, i + h))
                b = box - torch.tensor([j, i, j, i], dtype=torch.float32)
                b = torch.min(b.reshape(2, 2), torch.tensor([w, h], dtype=torch.float32)).clamp(min=0)
                box = b.reshape(-1)
        img, box = resize(img, box, float(t["long_side"] / float(max(img.size))))
        for op, f in t["jitter"]:
            enh = {"brightness": ImageEnhance.Brightness, "contrast": ImageEnhance.Contrast,
                   "saturation": ImageEnhance.Color}[op]
            img = enh(img).enhance(f)
        if t["flipped"]:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
            text = text.replace("right", "*&^special^&*").replace("left", "right").replace("*&^special^&*", "left")
            w = img.size[0]
            box = box[[2, 1, 0, 3]] * torch.tensor([-1, 1, -1, 1]) + torch.tensor([w, 0, w, 0])
        canvas = Image.new("RGB", (S, S))
        canvas.paste(img, (t["left"], t["top"]))
        box = box + torch.tensor([t["left"], t["top"], t["left"], t["top"]])
        target = torch.stack([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2, box[2] - box[0], box[3] - box[1]]) / S
        out.append({"canvas": canvas.tobytes().hex(), "target": target.tolist(), "text": text,
                    "region": [t["left"], t["top"], img.size[0], img.size[1]]})
    json.dump(out, open(sys.argv[2], "w"))


if __name__ == "__main__":
    main()
