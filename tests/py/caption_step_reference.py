#!/usr/bin/env python3
"""Caption fine-tuning steps, cross-entropy stage (reference §3.2, §2.4, §2.8), computed independently
of the Rust code.

Reads BEFORE (safetensors: the model's parameters by state-dict name; one batch `images`, `ids`
([CLS] caption [SEP], 0-padded), `mask`; scalars `hp.*`) and runs `hp.steps` optimiser steps, each
over `hp.accum` micro-batches of that batch, as caption_mplug.py trains: image → ViT (+ bridge); the
decoder reads the ids against the visual tokens alone (mask all ones); BertPrefixModel's loss is a
plain CrossEntropyLoss (mean over the non-ignored tokens of the batch) of logits[:, :-1] against
the ids[:, 1:] with PAD → −100; the loss / accum is back-propagated per micro-batch; then
`clip_grad_norm_` and `torch.optim.AdamW` (eps `hp.eps`, the reference's four groups) step.

Writes AFTER: `loss` [steps × accum], `grad_norm` [steps], final parameters, and `g.<name>` (the
accumulated gradients of the last step after clipping).
"""
import sys

import torch
import torch.nn.functional as F

from mplug_reference import clip, finetune_step_finish, finetune_step_setup


def main():
    hp, x, sd, r, opt = finetune_step_setup(sys.argv, {"images", "ids", "mask"})
    ids, m = x["ids"], x["mask"]
    accum = int(hp["accum"])
    losses, norms = [], []
    for _ in range(int(hp["steps"])):
        opt.zero_grad(set_to_none=True)
        for _ in range(accum):
            v = r.bridge(r.vit(x["images"]))
            logits = r.decode(ids, m, v, torch.ones(v.shape[0], v.shape[1], dtype=m.dtype))
            targets = ids.masked_fill(m == 0, -100)
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), targets[:, 1:].reshape(-1),
                                   ignore_index=-100)
            (loss / accum).backward()
            losses.append(loss.item())
        norms.append(clip(sd, hp["clip"]))
        opt.step()
    finetune_step_finish(sys.argv[2], sd, losses, norms)


if __name__ == "__main__":
    main()
