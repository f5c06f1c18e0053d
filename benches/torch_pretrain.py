#!/usr/bin/env python3
"""PyTorch baseline for the learnability check: ITC + ITM pre-training of the reference model.

The model is tests/py/mplug_reference.py (written from the reference doc, not from the Rust code),
made trainable by turning its state dict into leaf tensors; the objectives follow ALBEF/mPLUG
(reference §2.1-2.2): ITC against a momentum model's features of the batch plus a feature queue,
ITM on one positive and two negatives per row, negatives drawn from the ITC similarities, with
torch.optim.AdamW, a linear warm-up and a cosine decay, and the reference's 10 % training dropout
on the CLIP attention and after the visual bridge (`--vision-dropout`). It reads the same shards
`mplug train` reads (JPEG bytes + stored token ids) and reports the same held-out numbers (ITC recall@1 both ways over
the held-out set, one caption per image; ITM accuracy on each positive and the next row's image).

It answers: given the same data, initial weights and recipe, does the PyTorch model learn what
ours learns? Images get the evaluation resize only (no crop or flip), so the run is a little easier
than `mplug train`'s.

    benches/torch_pretrain.py --init RUN/checkpoints/step-00000001/model.safetensors \
        --train out/learnability/train --heldout out/learnability/heldout --steps 3000
"""
import argparse
import glob
import io
import math
import random
import sys
import time
import types
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "py"))
from mplug_reference import Dims, Ref, st_read  # noqa: E402

MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(3, 1, 1)
STD = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(3, 1, 1)
CLS = 101


def load(root, res):
    """Every row of ROOT/shards/*.parquet: images resized (bicubic) and normalised, token lists."""
    rows = []
    for f in sorted(glob.glob(f"{root}/shards/*.parquet")):
        rows += pq.read_table(f, columns=["image", "caption_tokens"]).to_pylist()
    images, captions = [], []
    for r in rows:
        im = Image.open(io.BytesIO(r["image"])).convert("RGB").resize((res, res), Image.BICUBIC)
        x = torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1).float() / 255
        images.append((x - MEAN) / STD)
        captions.append(r["caption_tokens"])
    return torch.stack(images), captions


def pad(seqs, max_tokens):
    """`[CLS] + tokens` (no trailing [SEP], the reference tokenizer's rule), zero-padded."""
    ids = torch.zeros(len(seqs), max_tokens, dtype=torch.long)
    for i, s in enumerate(seqs):
        s = [CLS] + list(s[: max_tokens - 1])
        ids[i, : len(s)] = torch.tensor(s)
    return ids, (ids != 0).long()


@torch.no_grad()
def evaluate(r, images, captions, max_tokens):
    r = Ref(r.sd, r.d, need_weights=False)  # the same weights without training dropout
    ids, m = pad([c[0] for c in captions], max_tokens)
    v, t, fi, ft = r.features(images, ids, m)
    n = len(captions)
    sim = fi @ ft.T
    i2t = (sim.argmax(1) == torch.arange(n)).float().mean().item()
    t2i = (sim.argmax(0) == torch.arange(n)).float().mean().item()
    pos = r.lin(r.fusion(v, t, m)[1][:, 0], "itm_head").argmax(1)
    neg = r.lin(r.fusion(v.roll(1, 0), t, m)[1][:, 0], "itm_head").argmax(1)
    itm = ((pos == 1).sum() + (neg == 0).sum()).item() / (2 * n)
    return i2t, t2i, itm


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--init", required=True, help="model.safetensors of an `mplug train` checkpoint")
    ap.add_argument("--train", required=True)
    ap.add_argument("--heldout", required=True)
    ap.add_argument("--bert", default="configs/config_bert_tiny.json")
    ap.add_argument("--vision-width", type=int, default=64)
    ap.add_argument("--vision-layers", type=int, default=2)
    ap.add_argument("--vision-heads", type=int, default=2)
    ap.add_argument("--patch", type=int, default=4)
    ap.add_argument("--image-res", type=int, default=32)
    ap.add_argument("--embed-dim", type=int, default=16)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=0.02)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--queue-size", type=int, default=32, help="0: plain in-batch ITC, no momentum model")
    ap.add_argument("--momentum", type=float, default=0.995)
    ap.add_argument("--max-tokens", type=int, default=30)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--vision-dropout", type=float, default=0.1,
                    help="training dropout on CLIP attention and after the bridge (the reference's 0.1)")
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    rnd = random.Random(a.seed)
    d = Dims(types.SimpleNamespace(bert=a.bert, vision_width=a.vision_width, vision_layers=a.vision_layers,
                                   vision_heads=a.vision_heads, patch=a.patch, image_res=a.image_res,
                                   embed_dim=a.embed_dim))
    # The decoder and the MLM head take no part in ITC/ITM.
    used = lambda k: not (k.startswith("text_decoder") or "cls.predictions" in k)  # noqa: E731
    sd = {k: v.float().clone().requires_grad_(True) for k, v in st_read(a.init).items()
          if used(k) and v.is_floating_point()}
    sdm = {k: v.detach().clone() for k, v in sd.items()}
    # The momentum model runs in training mode too (ALBEF never calls .eval() on it).
    r = Ref(sd, d, need_weights=False, vision_dropout=a.vision_dropout)
    rm = Ref(sdm, d, need_weights=False, vision_dropout=a.vision_dropout)
    train_images, train_captions = load(a.train, a.image_res)
    held_images, held_captions = load(a.heldout, a.image_res)
    print(f"train {len(train_captions)} images, held-out {len(held_captions)}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads", flush=True)
    # AdamW groups as the reference's (README, Training): no decay on `bias` and `LayerNorm.weight`;
    # CLIP's ln_*, `temp` and the embeddings decay.
    plain = lambda k: "bias" in k or "LayerNorm.weight" in k  # noqa: E731
    decay = [p for k, p in sd.items() if not plain(k)]
    no_decay = [p for k, p in sd.items() if plain(k)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=a.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / a.warmup) * 0.5 * (1 + math.cos(math.pi * min(s, a.steps) / a.steps)))
    q = a.queue_size
    qi, qt = F.normalize(torch.randn(q, a.embed_dim), dim=-1), F.normalize(torch.randn(q, a.embed_dim), dim=-1)
    qidx = torch.full((q,), -100)
    B, order, start = a.batch_size, [], time.time()
    for step in range(a.steps):
        if len(order) < B:
            order += rnd.sample(range(len(train_captions)), len(train_captions))
        rows, order = order[:B], order[B:]
        idx = torch.tensor(rows)
        ids, m = pad([rnd.choice(train_captions[i]) for i in rows], a.max_tokens)
        img = train_images[rows]
        v, t, fi, ft = r.features(img, ids, m)
        temp = sd["temp"].clamp(0.001, 0.5)
        if q:
            with torch.no_grad():
                for k in sd:
                    sdm[k].mul_(a.momentum).add_(sd[k].detach(), alpha=1 - a.momentum)
                _, _, fim, ftm = rm.features(img, ids, m)
                image_bank, text_bank = torch.cat([fim, qi]), torch.cat([ftm, qt])
                idx_bank = torch.cat([idx, qidx])
        else:
            image_bank, text_bank, idx_bank = fi, ft, idx
        sim_i2t, sim_t2i = fi @ text_bank.T / temp, ft @ image_bank.T / temp
        pos = (idx[:, None] == idx_bank[None]).float()
        target = pos / pos.sum(1, keepdim=True)
        itc = (-(sim_i2t.log_softmax(1) * target).sum(1).mean() - (sim_t2i.log_softmax(1) * target).sum(1).mean()) / 2
        if q:
            qi, qt, qidx = image_bank[:q], text_bank[:q], idx_bank[:q]
        with torch.no_grad():
            same = idx[:, None] == idx[None]
            w_t2i = sim_t2i[:, :B].softmax(1).masked_fill(same, 0)
            w_i2t = sim_i2t[:, :B].softmax(1).masked_fill(same, 0)
            neg_image = torch.multinomial(w_t2i + 1e-12 * (~same), 1).view(-1)
            neg_text = torch.multinomial(w_i2t + 1e-12 * (~same), 1).view(-1)
        fused_pos = r.fusion(v, t, m)[1][:, 0]
        fused_neg = r.fusion(torch.cat([v[neg_image], v]), torch.cat([t, t[neg_text]]),
                             torch.cat([m, m[neg_text]]))[1][:, 0]
        logits = r.lin(torch.cat([fused_pos, fused_neg]), "itm_head")
        labels = torch.cat([torch.ones(B, dtype=torch.long), torch.zeros(2 * B, dtype=torch.long)])
        itm = F.cross_entropy(logits, labels)
        opt.zero_grad()
        (itc + itm).backward()
        torch.nn.utils.clip_grad_norm_(list(sd.values()), 5.0)
        opt.step()
        sched.step()
        if step % 100 == 0:
            print(f"step {step} itc {itc.item():.3f} itm {itm.item():.3f} ({time.time() - start:.0f} s)", flush=True)
        if (step + 1) % a.eval_every == 0 or step + 1 == a.steps:
            i2t, t2i, acc = evaluate(r, held_images, held_captions, a.max_tokens)
            print(f"eval step {step + 1}: ITC R@1 i2t {i2t:.3f} t2i {t2i:.3f} (chance {1 / len(held_captions):.4f}) "
                  f"ITM acc {acc:.3f}", flush=True)
    print(f"wall {time.time() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
