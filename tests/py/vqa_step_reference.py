#!/usr/bin/env python3
"""VQA fine-tuning steps (reference §3.1, §2.4, §2.8), computed independently of the Rust code.

Reads BEFORE (safetensors: the model's parameters by state-dict name; one batch `images`,
`question_ids`, `question_mask`, `answer_ids`, `answer_mask`, `weights` [A], `counts` [B]; scalars
`hp.*`) and runs `hp.steps` steps on that batch as vqa_mplug.py trains:

  image → ViT (+ bridge); [CLS] question → text encoder → fusion; the decoder memory is the fused
  [visual; text] with mask [ones; question mask]; each question's memory is repeated once per answer
  (MPLUG.forward's `question_states += [question_output[b]] * n`); the decoder reads [CLS] answer
  [SEP], targets = ids with PAD → −100; BertLMHeadModel's loss with reduction='none': the token CE of
  logits[:, :-1] vs targets[:, 1:], summed per answer; loss = Σ weights × that / questions.
  The loss is back-propagated, `clip_grad_norm_`, and `torch.optim.AdamW` (eps `hp.eps`) steps over
  the reference's four groups (lr1 / lr2 for `visual_encoder`, no decay on bias / LayerNorm.weight).

Writes AFTER: `loss` [steps], `grad_norm` [steps], final parameters, and `g.<name>`: the gradients of
the last step after clipping.
"""
import sys

import torch
import torch.nn.functional as F

from mplug_reference import clip, finetune_step_finish, finetune_step_setup


def main():
    hp, x, sd, r, opt = finetune_step_setup(
        sys.argv, {"images", "question_ids", "question_mask", "answer_ids", "answer_mask", "weights", "counts"})
    q, qm = x["question_ids"], x["question_mask"]
    a_ids, a_mask, weights, counts = x["answer_ids"], x["answer_mask"], x["weights"], x["counts"].tolist()
    B = q.shape[0]
    losses, norms = [], []
    for _ in range(int(hp["steps"])):
        opt.zero_grad(set_to_none=True)
        v = r.bridge(r.vit(x["images"]))
        fv, ft = r.fusion(v, r.text(q, qm), qm)
        mem = torch.cat([fv, ft], 1)
        mem_mask = torch.cat([torch.ones(B, fv.shape[1], dtype=qm.dtype), qm], 1)
        states, masks = [], []
        for b, n in enumerate(counts):
            states += [mem[b]] * n
            masks += [mem_mask[b]] * n
        logits = r.decode(a_ids, a_mask, torch.stack(states), torch.stack(masks))
        targets = a_ids.masked_fill(a_ids == 0, -100)
        V = logits.shape[-1]
        tok = F.cross_entropy(logits[:, :-1].reshape(-1, V), targets[:, 1:].reshape(-1),
                              reduction="none", ignore_index=-100)
        per_answer = tok.view(a_ids.shape[0], -1).sum(1)
        loss = (weights * per_answer).sum() / B
        loss.backward()
        norms.append(clip(sd, hp["clip"]))
        losses.append(loss.item())
        opt.step()
    finetune_step_finish(sys.argv[2], sd, losses, norms)


if __name__ == "__main__":
    main()
