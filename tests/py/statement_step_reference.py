#!/usr/bin/env python3
"""SNLI-VE / NLVR2 fine-tuning steps of the designed heads (docs/ARCHITECTURE.md), computed
independently of the Rust code.

Reads BEFORE (safetensors: parameters by name incl. `cls_head.{0,2}.*`; one batch `images`
[B·F, 3, S, S] (F images per statement, statement after statement), `ids`, `mask`, `labels`;
scalars `hp.*`) and runs `hp.steps` steps: the statement through the text encoder; each of its F
images through the ViT (+ bridge) and fused with it; the F fused [CLS] concatenated (image order) →
Linear → ReLU → Linear; cross-entropy (mean) against the labels; backward; `clip_grad_norm_`;
`torch.optim.AdamW` (eps `hp.eps`, the reference's four groups).

Writes AFTER: `loss` [steps], `grad_norm` [steps], final parameters, `g.<name>` (last step's clipped
gradients).
"""
import sys

import torch
import torch.nn.functional as F

from mplug_reference import clip, finetune_step_finish, finetune_step_setup


def main():
    hp, x, sd, r, opt = finetune_step_setup(sys.argv, {"images", "ids", "mask", "labels"})
    ids, m, labels = x["ids"], x["mask"], x["labels"]
    frames = x["images"].shape[0] // ids.shape[0]
    losses, norms = [], []
    for _ in range(int(hp["steps"])):
        opt.zero_grad(set_to_none=True)
        t = r.text(ids, m)
        cls = []
        for f in range(frames):
            v = r.bridge(r.vit(x["images"][f::frames]))
            cls.append(r.fusion(v, t, m)[1][:, 0])
        h = F.relu(F.linear(torch.cat(cls, 1), sd["cls_head.0.weight"], sd["cls_head.0.bias"]))
        logits = F.linear(h, sd["cls_head.2.weight"], sd["cls_head.2.bias"])
        loss = F.cross_entropy(logits, labels)
        loss.backward()
        norms.append(clip(sd, hp["clip"]))
        losses.append(loss.item())
        opt.step()
    finetune_step_finish(sys.argv[2], sd, losses, norms)


if __name__ == "__main__":
    main()
