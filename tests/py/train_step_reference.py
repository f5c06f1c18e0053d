#!/usr/bin/env python3
"""Training steps of the pre-training objectives, computed independently of the Rust code.

Reads BEFORE (safetensors: the model's parameters by their state-dict names, the momentum model's as
`m.<name>`, the feature queues `image_queue`/`text_queue` [D, Q], `idx_queue` [1, Q], `queue_ptr`, and
one batch: `images`, `input_ids`, `attention_mask`, `idx`, `mlm_input_ids`, `mlm_labels`,
`prefix_ids`, `prefix_mask`, `decoder_ids`, `decoder_mask`, `decoder_labels`, plus the scalars
`hp.*`) and runs `hp.steps` steps on that batch as ALBEF/mPLUG train (reference §2.1-2.8):

  momentum update θm ← m·θm + (1−m)·θ; ITC against [momentum features of the batch | queue] with
  positives by image index and distillation α; enqueue; ITM with one positive and two hard negatives
  per row drawn from the in-batch ITC similarities (same index excluded); MLM on the fused text with
  momentum distillation; PrefixLM (decoder over [visual; prefix]); the sum back-propagated;
  `clip_grad_norm_`; `torch.optim.AdamW` (eps `hp.eps`) over the reference's four groups (lr1 / lr2 for
  `visual_encoder`, no decay on `bias` and `LayerNorm.weight`).

The model is tests/py/mplug_reference.py's functional Ref on leaf tensors. Hard negatives are drawn by
multinomial in the reference; the caller uses batches of two distinct images, so each row has exactly
one candidate and the draw is that candidate (asserted). Writes AFTER: `loss` [steps, 4]
(ITC, ITM, MLM, PrefixLM), `grad_norm` [steps], final parameters, `m.<name>`, the queues, and
`g.<name>`: the gradients of the last step after clipping.
"""
import sys
import types

import torch
import torch.nn.functional as F

from mplug_reference import Dims, Ref, st_read, st_write


def mlm_logits(r, ft):
    return r.head(ft, "fusion_encoder.cls.predictions.", r.sd["fusion_encoder.cls.predictions.decoder.weight"])


def main():
    before, after_path = st_read(sys.argv[1]), sys.argv[2]
    hp = {k[3:]: v.item() for k, v in before.items() if k.startswith("hp.")}
    d = Dims(types.SimpleNamespace(bert=sys.argv[3], vision_width=int(hp["vision_width"]),
                                   vision_layers=int(hp["vision_layers"]), vision_heads=int(hp["vision_heads"]),
                                   patch=int(hp["patch"]), image_res=int(hp["image_res"]),
                                   embed_dim=int(hp["embed_dim"])))
    batch_keys = {"images", "input_ids", "attention_mask", "idx", "mlm_input_ids", "mlm_labels", "prefix_ids",
                  "prefix_mask", "decoder_ids", "decoder_mask", "decoder_labels"}
    queue_keys = {"image_queue", "text_queue", "idx_queue", "queue_ptr"}
    x = {k: before[k] for k in batch_keys}
    sd = {k: v.clone().requires_grad_(True) for k, v in before.items()
          if not (k.startswith(("m.", "hp.")) or k in batch_keys or k in queue_keys)}
    sdm = {k[2:]: v.clone() for k, v in before.items() if k.startswith("m.")}
    assert sdm.keys() == sd.keys()
    r, rm = Ref(sd, d, need_weights=False), Ref(sdm, d, need_weights=False)
    qi, qt = before["image_queue"].clone(), before["text_queue"].clone()
    qidx, ptr = before["idx_queue"].clone(), int(before["queue_ptr"].item())
    img, ids, m, idx = x["images"], x["input_ids"], x["attention_mask"], x["idx"]
    B = idx.shape[0]
    alpha, momentum = hp["alpha"], hp["momentum"]
    # create_two_optimizer's groups; parameters that get no gradient (None) are skipped by AdamW.
    groups = {}
    for k, p in sd.items():
        visual = "visual_encoder" in k
        decay = not ("bias" in k or "LayerNorm.weight" in k)
        groups.setdefault((visual, decay), []).append(p)
    opt = torch.optim.AdamW(
        [{"params": ps, "lr": hp["lr2"] if vis else hp["lr1"], "weight_decay": hp["weight_decay"] if dec else 0.0}
         for (vis, dec), ps in sorted(groups.items())], eps=hp["eps"])
    losses, norms = [], []
    for _ in range(int(hp["steps"])):
        opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            for k in sd:
                sdm[k].mul_(momentum).add_(sd[k].detach() * (1 - momentum))
        v, t, fi, ft = r.features(img, ids, m)
        temp = sd["temp"]  # never clamped (reference §2.1 QUIRK)
        with torch.no_grad():
            vm, _, fim, ftm = rm.features(img, ids, m)
            image_all, text_all = torch.cat([fim.T, qi], 1), torch.cat([ftm.T, qt], 1)
            idx_all = torch.cat([idx.view(1, -1), qidx], 1)
            pos = (idx.view(-1, 1) == idx_all).float()
            targets = pos / pos.sum(1, keepdim=True)
            i2t_t = alpha * F.softmax(fim @ text_all / temp, 1) + (1 - alpha) * targets
            t2i_t = alpha * F.softmax(ftm @ image_all / temp, 1) + (1 - alpha) * targets
        sim_i2t, sim_t2i = fi @ text_all / temp, ft @ image_all / temp
        itc = (-(F.log_softmax(sim_i2t, 1) * i2t_t).sum(1).mean()
               - (F.log_softmax(sim_t2i, 1) * t2i_t).sum(1).mean()) / 2
        with torch.no_grad():  # _dequeue_and_enqueue
            qi[:, ptr:ptr + B], qt[:, ptr:ptr + B], qidx[:, ptr:ptr + B] = fim.T, ftm.T, idx.view(1, -1)
            ptr = (ptr + B) % qi.shape[1]
        # ITM
        _, fpos = r.fusion(v, t, m)
        with torch.no_grad():
            same = idx.view(-1, 1) == idx.view(1, -1)
            w_t2i = F.softmax(sim_t2i[:, :B], 1).masked_fill(same, 0)
            w_i2t = F.softmax(sim_i2t[:, :B], 1).masked_fill(same, 0)
            assert ((w_t2i > 0).sum(1) == 1).all() and ((w_i2t > 0).sum(1) == 1).all()
            neg_image, neg_text = w_t2i.argmax(1), w_i2t.argmax(1)
        _, fneg = r.fusion(torch.cat([v[neg_image], v]), torch.cat([t, t[neg_text]]), torch.cat([m, m[neg_text]]))
        logits = r.lin(torch.cat([fpos[:, 0], fneg[:, 0]]), "itm_head")
        itm = F.cross_entropy(logits, torch.cat([torch.ones(B), torch.zeros(2 * B)]).long())
        # MLM with momentum distillation (ALBEF's BertForMaskedLM)
        mids, labels = x["mlm_input_ids"], x["mlm_labels"]
        _, fm = r.fusion(v, r.text(mids, m), m)
        lg = mlm_logits(r, fm)
        with torch.no_grad():
            soft = F.softmax(mlm_logits(rm, rm.fusion(vm, rm.text(mids, m), m)[1]), -1)
        sel = labels != -100
        ce = F.cross_entropy(lg.view(-1, lg.shape[-1]), labels.view(-1), ignore_index=-100)
        distill = -(F.log_softmax(lg, -1) * soft).sum(-1)[sel].mean()
        mlm = (1 - alpha) * ce + alpha * distill
        # PrefixLM: image + prefix through encoders and fusion, the decoder predicts the rest
        pm = x["prefix_mask"]
        fv, fpt = r.fusion(v, r.text(x["prefix_ids"], pm), pm)
        mem = torch.cat([fv, fpt], 1)
        mem_mask = torch.cat([torch.ones(B, fv.shape[1], dtype=pm.dtype), pm], 1)
        dl = r.decode(x["decoder_ids"], x["decoder_mask"], mem, mem_mask)
        prefix = F.cross_entropy(dl[:, :-1].reshape(-1, dl.shape[-1]), x["decoder_labels"][:, 1:].reshape(-1),
                                 ignore_index=-100)
        (itc + itm + mlm + prefix).backward()
        norms.append(torch.nn.utils.clip_grad_norm_([p for p in sd.values() if p.grad is not None],
                                                    hp["clip"]).item())
        losses.append([itc.item(), itm.item(), mlm.item(), prefix.item()])
        opt.step()
    out = {"loss": torch.tensor(losses, dtype=torch.float64), "grad_norm": torch.tensor(norms, dtype=torch.float64),
           "image_queue": qi, "text_queue": qt, "idx_queue": qidx, "queue_ptr": torch.tensor([ptr])}
    out.update({k: p.detach() for k, p in sd.items()})
    out.update({"m." + k: p for k, p in sdm.items()})
    out.update({"g." + k: p.grad for k, p in sd.items() if p.grad is not None})
    st_write(after_path, out)


if __name__ == "__main__":
    main()
