#!/usr/bin/env python3
"""Independent reference of `mplug eval vqa|caption` for the parity tests.

Written from shared/docs/mplug-reference.md (3.1, 3.2, 3.7, 4.3, 5), not from the Rust code: the
split's rows are read with pyarrow in shard order; each stored image goes through PIL (`convert('RGB')`,
`resize((res, res), BICUBIC)`, torchvision's test transform on PIL), ToTensor and the CLIP Normalize;
VQA questions are `[CLS] + tokens` padded to the longest with 0, memory = fused [visual; text]; captions
decode against the visual tokens only; the model and beam search are mplug_reference.py's; answers are
`BertTokenizer.decode` (transformers' slow tokenizer) with `[SEP]`, `[CLS]`, `[PAD]` removed, stripped.

Prints JSON: [{"id": question_id | image_id, "text": answer | caption, "tokens": [...]}] in split order.
"""
import argparse
import io
import json
import os
import sys

import numpy as np
import pyarrow.parquet as pq
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mplug_reference import Dims, Ref, load_checkpoint  # noqa: E402

MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
STD = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)


def rows(dataset_dir, split, columns):
    manifest = json.load(open(os.path.join(dataset_dir, "manifest.json")))
    for shard in manifest["shards"]:
        table = pq.read_table(os.path.join(dataset_dir, shard["path"]), columns=columns + ["split"])
        for row in table.to_pylist():
            if row["split"] == split:
                yield row


def image_tensor(row, res):
    if row["image_codec"] == "raw":
        arr = np.frombuffer(row["image"], dtype=np.uint8).reshape(row["height"], row["width"], 3)
        img = Image.fromarray(arr)
    else:
        img = Image.open(io.BytesIO(row["image"])).convert("RGB")
    img = img.resize((res, res), Image.BICUBIC)
    x = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).float() / 255.0
    return x


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("task", choices=["vqa", "caption"])
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--bert", required=True)
    ap.add_argument("--vision-width", type=int, required=True)
    ap.add_argument("--vision-layers", type=int, required=True)
    ap.add_argument("--vision-heads", type=int, required=True)
    ap.add_argument("--patch", type=int, required=True)
    ap.add_argument("--image-res", type=int, required=True)
    ap.add_argument("--embed-dim", type=int, required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", required=True)
    ap.add_argument("--vocab", required=True)
    ap.add_argument("--batch-size", type=int, required=True)
    ap.add_argument("--beam-size", type=int, required=True)
    ap.add_argument("--min-length", type=int, required=True)
    ap.add_argument("--max-length", type=int, required=True)
    ap.add_argument("--limit", type=int, default=None, help="only the first N items")
    a = ap.parse_args()

    from transformers import BertTokenizer
    tok = BertTokenizer(a.vocab, do_lower_case=True)
    d = Dims(a)
    r = Ref(load_checkpoint(a.ckpt, d), d)

    image_cols = ["image_id", "width", "height", "image_codec", "image"]
    items = []  # (id, image tensor, question tokens or None)
    if a.task == "vqa":
        for row in rows(a.data, a.split, image_cols + ["question_ids", "question_tokens"]):
            x = image_tensor(row, d.res)
            for qid, toks in zip(row["question_ids"], row["question_tokens"]):
                items.append((qid, x, toks))
    else:
        for row in rows(a.data, a.split, image_cols):
            items.append((row["image_id"], image_tensor(row, d.res), None))

    if a.limit is not None:
        items = items[: a.limit]
    out = []
    with torch.no_grad():
        for s in range(0, len(items), a.batch_size):
            batch = items[s : s + a.batch_size]
            img = (torch.stack([b[1] for b in batch]) - MEAN) / STD
            v = r.bridge(r.vit(img))
            if a.task == "vqa":
                seqs = [[101] + list(b[2]) for b in batch]
                L = max(len(q) for q in seqs)
                ids = torch.tensor([q + [0] * (L - len(q)) for q in seqs])
                m = torch.tensor([[1] * len(q) + [0] * (L - len(q)) for q in seqs])
                t = r.text(ids, m)
                fv, ft = r.fusion(v, t, m)
                mem = torch.cat([fv, ft], 1)
                mem_mask = torch.cat([torch.ones(len(batch), fv.shape[1], dtype=torch.long), m], 1)
            else:
                mem, mem_mask = v, torch.ones(len(batch), v.shape[1], dtype=torch.long)
            res = r.beam_search(mem, mem_mask, a.beam_size, a.min_length, a.max_length, 1)
            for b, hyps in zip(batch, res):
                ids = hyps[0][1]
                text = tok.decode(ids, clean_up_tokenization_spaces=True)
                text = text.replace("[SEP]", "").replace("[CLS]", "").replace("[PAD]", "").strip()
                out.append({"id": b[0], "text": text, "tokens": ids})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
