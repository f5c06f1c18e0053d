#!/usr/bin/env python3
"""Caption fine-tuning steps, SCST stage (reference §3.3, §3.7, §2.8), computed independently of the
Rust code with the official caption tools.

Reads BEFORE (safetensors: the model's parameters by state-dict name; `images`; `references` and
`vocab`: UTF-8 bytes of a JSON list of each image's reference captions and of the vocab.txt path;
scalars `hp.*` incl. `beam`, `min_length`, `max_length`) and runs `hp.steps` optimiser steps, each
as caption_mplug_scst.py trains:
- image → ViT (+ bridge); the fast beam search of predictor.py with gradients: the whole prefix
  re-run each step, log(softmax), EOS forbidden before min_length, GNMT penalty, top-k over
  beam × vocab, a beam emitting EOS recorded and kept, an example done when its top beam is, every
  beam recorded at the last step; hypotheses sorted by score, the best `beam` kept;
- each hypothesis decoded by transformers' BertTokenizer, `[SEP]`/`[CLS]`/`[PAD]` removed; the
  hypotheses and the references (repeated per beam) tokenised by pycocoevalcap's PTBTokenizer (its
  Java jar); reward = pycocoevalcap's Cider over the batch; baseline = mean over the image's beams;
- loss = −mean[(score / tokens) · (reward − baseline)]; backward, `clip_grad_norm_`, AdamW.

Writes AFTER: `loss`, `grad_norm`, final parameters, `g.<name>` (last step's gradients after
clipping), `rewards` [steps × B × beam] and `hypotheses` [steps × B × beam, max_length + 1]
(token ids, −1 padded).
"""
import json
import sys

import torch
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
from transformers import BertTokenizer

from mplug_reference import clip, finetune_step_finish, finetune_step_setup


def beam_search(r, mem, beam, min_len, max_len):
    B = mem.shape[0]
    mem = mem.repeat_interleave(beam, 0)
    alive = torch.full((B * beam, 1), 101, dtype=torch.long)
    topk_log_probs = torch.tensor([0.0] + [float("-inf")] * (beam - 1)).repeat(B)
    offset = list(range(B))
    hyps = [[] for _ in range(B)]
    results = [None] * B
    for step in range(max_len):
        mm = torch.ones(mem.shape[:2], dtype=torch.long)
        logits = r.decode(alive, torch.ones_like(alive), mem, mm)[:, -1, :]
        V = logits.shape[-1]
        lp = torch.log(torch.softmax(logits, dim=-1))
        if step < min_len:
            lp[:, 102] = -1e20
        lp = lp + topk_log_probs.view(-1).unsqueeze(1)
        pen = ((5.0 + (step + 1)) / 6.0) ** 0.6
        scores, ids = (lp / pen).reshape(-1, beam * V).topk(beam, dim=-1)
        topk_log_probs = scores * pen
        beam_index, tokens = ids // V, ids.fmod(V)
        batch_index = beam_index + (torch.arange(len(offset)) * beam).unsqueeze(1)
        alive = torch.cat([alive.index_select(0, batch_index.view(-1)), tokens.view(-1, 1)], -1)
        finished = tokens.eq(102)
        if step + 1 == max_len:
            finished.fill_(True)
        if finished.any():
            preds = alive.view(-1, beam, alive.shape[-1])
            keep = []
            for i in range(finished.shape[0]):
                b, top = offset[i], bool(finished[i, 0])
                for j in range(beam):
                    if top or bool(finished[i, j]):
                        hyps[b].append((scores[i, j], preds[i, j]))
                if top:
                    results[b] = sorted(hyps[b], key=lambda h: h[0].item(), reverse=True)[:beam]
                else:
                    keep.append(i)
            if not keep:
                break
            keep = torch.tensor(keep)
            topk_log_probs = topk_log_probs.index_select(0, keep)
            batch_index = batch_index.index_select(0, keep)
            offset = [offset[i] for i in keep.tolist()]
            alive = preds.index_select(0, keep).view(-1, alive.shape[-1])
        mem = mem.index_select(0, batch_index.view(-1))
    return results


def ptb(captions):
    tok = PTBTokenizer().tokenize({i: [{"caption": c} for c in cs] for i, cs in enumerate(captions)})
    return {i: tok[i] for i in range(len(captions))}


def main():
    hp, x, sd, r, opt = finetune_step_setup(sys.argv, {"images", "references", "vocab"})
    refs = json.loads(bytes(x["references"].tolist()).decode())
    tokenizer = BertTokenizer(bytes(x["vocab"].tolist()).decode(), do_lower_case=True)
    beam = int(hp["beam"])
    losses, norms, rewards, hyp_rows = [], [], [], []
    for _ in range(int(hp["steps"])):
        opt.zero_grad(set_to_none=True)
        v = r.bridge(r.vit(x["images"]))
        found = beam_search(r, v, beam, int(hp["min_length"]), int(hp["max_length"]))
        scores = torch.stack([torch.stack([s for s, _ in hs]) for hs in found])
        seqs = [t for hs in found for _, t in hs]
        lengths = torch.tensor([[float(t.numel()) for _, t in hs] for hs in found])
        gen = [tokenizer.decode(t.tolist(), clean_up_tokenization_spaces=True)
               .replace("[SEP]", "").replace("[CLS]", "").replace("[PAD]", "").strip() for t in seqs]
        gts = ptb([refs[i // beam] for i in range(len(gen))])
        res = ptb([[g] for g in gen])
        reward = torch.tensor(Cider().compute_score(gts, res)[1], dtype=torch.float32).view(-1, beam)
        loss = (-(scores / lengths) * (reward - reward.mean(-1, keepdim=True))).mean()
        loss.backward()
        losses.append(loss.item())
        norms.append(clip(sd, hp["clip"]))
        opt.step()
        rewards.extend(reward.view(-1).double().tolist())
        for t in seqs:
            row = torch.full((int(hp["max_length"]) + 1,), -1, dtype=torch.long)
            row[: t.numel()] = t
            hyp_rows.append(row)
    finetune_step_finish(sys.argv[2], sd, losses, norms, {
        "rewards": torch.tensor(rewards, dtype=torch.float64),
        "hypotheses": torch.stack(hyp_rows),
    })


if __name__ == "__main__":
    main()
