#!/usr/bin/env python3
"""Grounding fine-tuning steps (reference §3.5, §2.8), computed independently of the Rust code.

Reads BEFORE (safetensors: the model's parameters by state-dict name; one batch `images` (already
normalised and padded), `ids`, `mask` (the phrase), `targets` [B, 4] float32 (cx, cy, w, h) / S;
scalars `hp.*`, `hp.per_sample` 0 or 1) and runs `hp.steps` optimiser steps as
model_grounding_mplug.py trains: image → ViT (+ bridge), phrase → text encoder, fusion; memory =
cat[fused visual, fused text]; the decoder reads [`[unused339]`, ⌊clamp(t, 0, 1) · 336⌋ + 345 ...]
and its logits + bbox_prob_mask (−10000 outside ids 345–681) predict the four tokens, CE with
reduction='none'; weights without gradient: L1 of the argmax box to the target (clamped to [0, 5])
and 1 − GIoU (DETR's pairwise generalized_box_iou, its diagonal); the loss `loss.view(B, 1, 4) *
l1 * (1 − giou).unsqueeze(1)` averaged (the broadcast quirk), or with `hp.per_sample` each row by
its own weights; then `clip_grad_norm_` and AdamW.

Writes AFTER: `loss`, `grad_norm`, final parameters and `g.<name>` (last step's gradients).
"""
import sys

import torch
import torch.nn.functional as F

from mplug_reference import clip, finetune_step_finish, finetune_step_setup


def xyxy(b):
    cx, cy, w, h = b.unbind(-1)
    return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], -1)


def generalized_box_iou(a, b):
    """DETR's box_ops: pairwise [N, M]."""
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = torch.max(a[:, None, :2], b[:, :2])
    rb = torch.min(a[:, None, 2:], b[:, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a[:, None] + area_b - inter
    iou = inter / union
    lt = torch.min(a[:, None, :2], b[:, :2])
    rb = torch.max(a[:, None, 2:], b[:, 2:])
    wh = (rb - lt).clamp(min=0)
    area = wh[..., 0] * wh[..., 1]
    return iou - (area - union) / area


def main():
    hp, x, sd, r, opt = finetune_step_setup(sys.argv, {"images", "ids", "mask", "targets"})
    ids, m, targets = x["ids"], x["mask"], x["targets"]
    B = ids.shape[0]
    prob_mask = torch.full((r.d.V,), -10000.0)
    prob_mask[345:345 + 337] = 0.0
    losses, norms = [], []
    for _ in range(int(hp["steps"])):
        opt.zero_grad(set_to_none=True)
        v = r.bridge(r.vit(x["images"]))
        fv, ft = r.fusion(v, r.text(ids, m), m)
        mem = torch.cat([fv, ft], 1)
        mem_mask = torch.cat([torch.ones(B, fv.shape[1], dtype=m.dtype), m], 1)
        bins = (targets.clamp(0, 1) * 336).floor().long() + 345
        seq = torch.cat([torch.full((B, 1), 344, dtype=torch.long), bins], 1)
        logits = r.decode(seq, torch.ones_like(seq), mem, mem_mask) + prob_mask
        ce = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), seq[:, 1:].reshape(-1), reduction="none")
        with torch.no_grad():
            pred = torch.true_divide(logits[:, :-1].argmax(-1) - 345, 336)
            l1 = F.l1_loss(pred, targets, reduction="none").clamp(0, 5)
            giou = 1 - torch.diag(generalized_box_iou(xyxy(pred), xyxy(targets)))
        if hp["per_sample"]:
            loss = (ce.view(B, 4) * l1 * giou.unsqueeze(1)).mean()
        else:
            loss = (ce.view(B, -1, 4) * l1 * giou.unsqueeze(1)).mean()
        loss.backward()
        losses.append(loss.item())
        norms.append(clip(sd, hp["clip"]))
        opt.step()
    finetune_step_finish(sys.argv[2], sd, losses, norms)


if __name__ == "__main__":
    main()
