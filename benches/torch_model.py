#!/usr/bin/env python3
"""PyTorch eager baseline for `mplug model bench`: the same VQA-style training step (ViT -> text
encoder -> fusion -> decoder LM loss + ITM loss, forward + backward) on the same shapes, with the
functional reference model of tests/py/mplug_reference.py (CLIP attention through PyTorch's fused
MultiheadAttention path as CLIP calls it, BERT attention as transformers 4.14's eager matmul/softmax).
Dropout is off here (on in the Rust run), which favours the baseline slightly.

    benches/torch_model.py --config base --image-res 256 --batch 2 --steps 3
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "py"))
import mplug_reference as ref  # noqa: E402

PRESETS = {
    "tiny": dict(bert="configs/config_bert_tiny.json", vision_width=64, vision_layers=2, vision_heads=2, patch=8, embed_dim=16),
    "base": dict(bert="configs/config_bert_stride3.json", vision_width=768, vision_layers=12, vision_heads=12, patch=16, embed_dim=256),
    "large": dict(bert="configs/config_bert.json", vision_width=1024, vision_layers=24, vision_heads=16, patch=14, embed_dim=256),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", choices=PRESETS, default="tiny")
    ap.add_argument("--image-res", type=int, required=True)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--text-len", type=int, default=16)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    a = ap.parse_args()
    args = argparse.Namespace(image_res=a.image_res, **PRESETS[a.config])
    d = ref.Dims(args)
    dtype = torch.float32 if a.dtype == "fp32" else torch.bfloat16
    sd = ref.make_state_dict(d, 0, "task", (d.res // d.patch) ** 2 + 1)
    sd = {k: (t.to(a.device, dtype).requires_grad_() if t.is_floating_point() else t.to(a.device)) for k, t in sd.items()}
    r = ref.Ref(sd, d, need_weights=False)
    b, l = a.batch, a.text_len
    image = torch.randn(b, 3, d.res, d.res, device=a.device, dtype=dtype)
    ids = torch.randint(1000, d.V, (b, l), device=a.device)
    mask = torch.ones(b, l, dtype=torch.long, device=a.device)
    itm_labels = torch.randint(0, 2, (b,), device=a.device)
    params = [t for t in sd.values() if t.requires_grad]

    def step():
        v = r.bridge(r.vit(image))
        t = r.text(ids, mask)
        fv, ft = r.fusion(v, t, mask)
        mem = torch.cat([fv, ft], 1)
        mem_mask = torch.cat([torch.ones(b, fv.shape[1], dtype=torch.long, device=a.device), mask], 1)
        logits = r.decode(ids, mask, mem, mem_mask)
        lm = F.cross_entropy(logits[:, :-1].reshape(-1, d.V).float(), ids[:, 1:].reshape(-1))
        itm = F.cross_entropy(r.lin(ft[:, 0], "itm_head").float(), itm_labels)
        (lm + itm).backward()
        for p in params:
            p.grad = None

    def sync():
        if a.device.startswith("cuda"):
            torch.cuda.synchronize()

    for _ in range(a.warmup):
        step()
    sync()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    # the step's FLOPs (forward + backward, as torch's own counter sees its matmuls and attention),
    # the numerator of the MFU gpu-check computes for both implementations of this step
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        step()
    print(json.dumps({"impl": "pytorch-eager", "flops_per_step": counter.get_total_flops(), "config": a.config, "device": a.device, "dtype": a.dtype,
                      "image_res": d.res, "batch": b, "text_len": l, "threads": torch.get_num_threads(), "dropout": False,
                      "median_step_s": round(med, 4), "samples_per_s": round(b / med, 2)}))


if __name__ == "__main__":
    main()
