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
import types

import torch
import torch.nn.functional as F

from mplug_reference import Dims, Ref, st_read, st_write


def main():
    before, after_path = st_read(sys.argv[1]), sys.argv[2]
    hp = {k[3:]: v.item() for k, v in before.items() if k.startswith("hp.")}
    d = Dims(types.SimpleNamespace(bert=sys.argv[3], vision_width=int(hp["vision_width"]),
                                   vision_layers=int(hp["vision_layers"]), vision_heads=int(hp["vision_heads"]),
                                   patch=int(hp["patch"]), image_res=int(hp["image_res"]),
                                   embed_dim=int(hp["embed_dim"])))
    batch_keys = {"images", "ids", "mask"}
    x = {k: before[k] for k in batch_keys}
    sd = {k: v.clone().requires_grad_(True) for k, v in before.items()
          if not (k.startswith("hp.") or k in batch_keys)}
    r = Ref(sd, d, need_weights=False)
    groups = {}
    for k, p in sd.items():
        visual = "visual_encoder" in k
        decay = not ("bias" in k or "LayerNorm.weight" in k)
        groups.setdefault((visual, decay), []).append(p)
    opt = torch.optim.AdamW(
        [{"params": ps, "lr": hp["lr2"] if vis else hp["lr1"], "weight_decay": hp["weight_decay"] if dec else 0.0}
         for (vis, dec), ps in sorted(groups.items())], eps=hp["eps"])
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
        norms.append(torch.nn.utils.clip_grad_norm_([p for p in sd.values() if p.grad is not None],
                                                    hp["clip"]).item())
        opt.step()
    out = {"loss": torch.tensor(losses, dtype=torch.float64), "grad_norm": torch.tensor(norms, dtype=torch.float64)}
    out.update({k: p.detach() for k, p in sd.items()})
    out.update({"g." + k: p.grad for k, p in sd.items() if p.grad is not None})
    st_write(after_path, out)


if __name__ == "__main__":
    main()
