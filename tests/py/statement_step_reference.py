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
    batch_keys = {"images", "ids", "mask", "labels"}
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
    ids, m, labels = x["ids"], x["mask"], x["labels"]
    B = ids.shape[0]
    frames = x["images"].shape[0] // B
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
        norms.append(torch.nn.utils.clip_grad_norm_([p for p in sd.values() if p.grad is not None],
                                                    hp["clip"]).item())
        losses.append(loss.item())
        opt.step()
    out = {"loss": torch.tensor(losses, dtype=torch.float64), "grad_norm": torch.tensor(norms, dtype=torch.float64)}
    out.update({k: p.detach() for k, p in sd.items()})
    out.update({"g." + k: p.grad for k, p in sd.items() if p.grad is not None})
    st_write(after_path, out)


if __name__ == "__main__":
    main()
