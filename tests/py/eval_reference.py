#!/usr/bin/env python3
"""Independent reference of `mplug eval vqa|caption` for the parity tests.

Written from shared/docs/mplug-reference.md (3.1, 3.2, 3.7, 4.3, 5), not from the Rust code: the
split's rows are read with pyarrow in shard order; each stored image goes through PIL (`convert('RGB')`,
`resize((res, res), BICUBIC)`, torchvision's test transform on PIL), ToTensor and the CLIP Normalize;
VQA questions are `[CLS] + tokens` padded to the longest with 0, memory = fused [visual; text]; captions
decode against the visual tokens only; the model and beam search are mplug_reference.py's; answers are
`BertTokenizer.decode` (transformers' slow tokenizer) with `[SEP]`, `[CLS]`, `[PAD]` removed, stripped.

Prints JSON: [{"id": question_id | image_id, "text": answer | caption, "tokens": [...]}] in split order.
"""
import argparse
import io
import json
import os
import sys
import time

import numpy as np
import pyarrow.parquet as pq
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mplug_reference import Dims, Ref, load_checkpoint  # noqa: E402

MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
STD = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)


def rows(dataset_dir, split, columns):
    manifest = json.load(open(os.path.join(dataset_dir, "manifest.json")))
    for shard in manifest["shards"]:
        table = pq.read_table(os.path.join(dataset_dir, shard["path"]), columns=columns + ["split"])
        for row in table.to_pylist():
            if row["split"] == split:
                yield row


def image_tensor(row, res):
    if row["image_codec"] == "raw":
        arr = np.frombuffer(row["image"], dtype=np.uint8).reshape(row["height"], row["width"], 3)
        img = Image.fromarray(arr)
    else:
        img = Image.open(io.BytesIO(row["image"])).convert("RGB")
    img = img.resize((res, res), Image.BICUBIC)
    x = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).float() / 255.0
    return x


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("task", choices=["vqa", "caption", "retrieval", "grounding", "video-qa", "video-caption", "snli-ve", "nlvr2"])
    ap.add_argument("--head", default=None, help="snli-ve/nlvr2: safetensors with cls_head.0/2 weights")
    ap.add_argument("--prompt", default="a picture of")
    ap.add_argument("--k-test", type=int, default=128)
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--bert", required=True)
    ap.add_argument("--vision-width", type=int, required=True)
    ap.add_argument("--vision-layers", type=int, required=True)
    ap.add_argument("--vision-heads", type=int, required=True)
    ap.add_argument("--patch", type=int, required=True)
    ap.add_argument("--image-res", type=int, required=True)
    ap.add_argument("--embed-dim", type=int, required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", required=True)
    ap.add_argument("--vocab", required=True)
    ap.add_argument("--batch-size", type=int, required=True)
    ap.add_argument("--beam-size", type=int, required=True)
    ap.add_argument("--min-length", type=int, required=True)
    ap.add_argument("--max-length", type=int, required=True)
    ap.add_argument("--limit", type=int, default=None, help="only the first N items")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--save-inputs", default=None, help="grounding: write images/input_ids (safetensors)")
    ap.add_argument("--answer-list", default=None, help="vqa: rank this JSON list instead of generating")
    ap.add_argument("--video", action="store_true", help="retrieval over video_text.v1 clips")
    a = ap.parse_args()

    from transformers import BertTokenizer
    tok = BertTokenizer(a.vocab, do_lower_case=True)
    d = Dims(a)
    dev = torch.device(a.device)
    r = Ref({k: t.to(dev) for k, t in load_checkpoint(a.ckpt, d).items()}, d)

    start = time.perf_counter()  # as `mplug eval`: reading, decoding and generation, not the weights
    image_cols = ["image_id", "width", "height", "image_codec", "image"]
    if a.task == "retrieval":
        return retrieval(a, r, d, image_cols, dev, start)
    if a.task == "grounding":
        return grounding(a, r, d, image_cols, dev, start)
    if a.task == "video-qa":
        return video_qa(a, r, d, tok, dev, start)
    if a.task == "video-caption":
        return video_caption(a, r, d, tok, dev, start)
    if a.task in ("snli-ve", "nlvr2"):
        return statements(a, r, d, dev, start)
    items = []  # (id, image tensor, question tokens or None)
    if a.task == "vqa":
        for row in rows(a.data, a.split, image_cols + ["question_ids", "question_tokens"]):
            x = image_tensor(row, d.res)
            for qid, toks in zip(row["question_ids"], row["question_tokens"]):
                items.append((qid, x, toks))
    else:
        for row in rows(a.data, a.split, image_cols):
            items.append((row["image_id"], image_tensor(row, d.res), None))

    if a.limit is not None:
        items = items[: a.limit]
    answers = None
    if a.answer_list:
        texts = json.load(open(a.answer_list))
        answers = (texts, [[101] + tok.encode(t + "[SEP]", add_special_tokens=False) for t in texts])
    out = []
    with torch.no_grad():
        for s in range(0, len(items), a.batch_size):
            batch = items[s : s + a.batch_size]
            img = ((torch.stack([b[1] for b in batch]) - MEAN) / STD).to(dev)
            v = r.bridge(r.vit(img))
            if a.task == "vqa":
                seqs = [[101] + list(b[2]) for b in batch]
                L = max(len(q) for q in seqs)
                ids = torch.tensor([q + [0] * (L - len(q)) for q in seqs], device=dev)
                m = torch.tensor([[1] * len(q) + [0] * (L - len(q)) for q in seqs], device=dev)
                t = r.text(ids, m)
                fv, ft = r.fusion(v, t, m)
                mem = torch.cat([fv, ft], 1)
                mem_mask = torch.cat([torch.ones(len(batch), fv.shape[1], dtype=torch.long, device=dev), m], 1)
            else:
                mem, mem_mask = v, torch.ones(len(batch), v.shape[1], dtype=torch.long, device=dev)
            if answers is not None:
                for b, (idx, prob) in zip(batch, rank_answer(r, mem, mem_mask, answers, a.k_test)):
                    ids = answers[1][idx]
                    out.append({"id": b[0], "text": answers[0][idx], "tokens": ids, "prob": prob})
                continue
            res = r.beam_search(mem, mem_mask, a.beam_size, a.min_length, a.max_length, 1)
            for b, hyps in zip(batch, res):
                ids = hyps[0][1]
                text = tok.decode(ids, clean_up_tokenization_spaces=True)
                text = text.replace("[SEP]", "").replace("[CLS]", "").replace("[PAD]", "").strip()
                out.append({"id": b[0], "text": text, "tokens": ids})
    seconds = time.perf_counter() - start
    tokens = sum(len(o["tokens"]) - 1 for o in out)
    print(json.dumps({"items": len(out), "seconds": seconds, "generated_tokens": tokens}), file=sys.stderr)
    print(json.dumps(out))


def itm_eval(scores_i2t, scores_t2i, txt2img, img2txt):
    """The reference's itm_eval, numpy as written there."""
    ranks = np.zeros(scores_i2t.shape[0])
    for index, score in enumerate(scores_i2t):
        inds = np.argsort(score)[::-1]
        rank = 1e20
        for i in img2txt[index]:
            tmp = np.where(inds == i)[0][0]
            if tmp < rank:
                rank = tmp
        ranks[index] = rank
    tr1, tr5, tr10 = (100.0 * len(np.where(ranks < k)[0]) / len(ranks) for k in (1, 5, 10))
    ranks = np.zeros(scores_t2i.shape[0])
    for index, score in enumerate(scores_t2i):
        inds = np.argsort(score)[::-1]
        ranks[index] = np.where(inds == txt2img[index])[0][0]
    ir1, ir5, ir10 = (100.0 * len(np.where(ranks < k)[0]) / len(ranks) for k in (1, 5, 10))
    tr_mean, ir_mean = (tr1 + tr5 + tr10) / 3, (ir1 + ir5 + ir10) / 3
    return {"txt_r1": tr1, "txt_r5": tr5, "txt_r10": tr10, "txt_r_mean": tr_mean, "img_r1": ir1,
            "img_r5": ir5, "img_r10": ir10, "img_r_mean": ir_mean, "r_mean": (tr_mean + ir_mean) / 2}


@torch.no_grad()
def retrieval(a, r, d, image_cols, dev, start):
    """retrieval_img_mplug.py's evaluation (reference 3.4): texts [CLS] + tokens, max_length 30
    padded to 30; ITC sims without temperature; top-k re-scored by the ITM positive logit."""
    F = torch.nn.functional
    video = a.video
    L = 35 if video else 30  # retrieval_vid_mplug.py: max_length 35; images 30
    cols = ["video_id", "frames", "frame_codec", "width", "height"] if video else image_cols
    data = list(rows(a.data, a.split, cols + ["captions", "caption_tokens"]))
    if a.limit is not None:
        data = data[: a.limit]
    texts, img2txt, txt2img = [], [], []
    for i, row in enumerate(data):
        img2txt.append(list(range(len(texts), len(texts) + len(row["caption_tokens"]))))
        for toks in row["caption_tokens"]:
            texts.append([101] + list(toks)[: L - 1])
            txt2img.append(i)
    ids = torch.tensor([t + [0] * (L - len(t)) for t in texts], device=dev)
    m = torch.tensor([[1] * len(t) + [0] * (L - len(t)) for t in texts], device=dev)
    t_states, t_feats = [], []
    for s in range(0, len(texts), 256):
        t = r.text(ids[s : s + 256], m[s : s + 256])
        t_states.append(t)
        t_feats.append(F.normalize(r.lin(t[:, 0], "text_proj"), dim=-1))
    t_states, t_feats = torch.cat(t_states), torch.cat(t_feats)
    v_states, v_feats = [], []
    for s in range(0, len(data), a.batch_size):
        chunk = data[s : s + a.batch_size]
        if video:
            # BLIP's video retrieval: frames squashed to S, vision_proj of each frame's CLS averaged
            # over frames then normalised; ITM memory = all frames' tokens
            frames = []
            for row in chunk:
                for f in row["frames"]:
                    img = Image.open(io.BytesIO(f)).convert("RGB") if row["frame_codec"] != "raw" else Image.fromarray(
                        np.frombuffer(f, dtype=np.uint8).reshape(row["height"], row["width"], 3))
                    img = img.resize((d.res, d.res), Image.BICUBIC)
                    frames.append(torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).float() / 255.0)
            img = ((torch.stack(frames) - MEAN) / STD).to(dev)
            v = r.bridge(r.vit(img))
            nf = len(chunk[0]["frames"])
            proj = r.lin(v[:, 0], "vision_proj").view(len(chunk), nf, -1).mean(1)
            v_feats.append(F.normalize(proj, dim=-1))
            v_states.append(v.reshape(len(chunk), nf * v.shape[1], v.shape[2]))
        else:
            img = ((torch.stack([image_tensor(row, d.res) for row in chunk]) - MEAN) / STD).to(dev)
            v = r.bridge(r.vit(img))
            v_states.append(v)
            v_feats.append(F.normalize(r.lin(v[:, 0], "vision_proj"), dim=-1))
    v_states, v_feats = torch.cat(v_states), torch.cat(v_feats)
    sims = v_feats @ t_feats.t()
    i2t = torch.full((len(data), len(texts)), -100.0, device=dev)
    k = min(a.k_test, len(texts))
    for i in range(len(data)):
        idx = sims[i].topk(k).indices
        _, ft = r.fusion(v_states[i].repeat(k, 1, 1), t_states[idx], m[idx])
        i2t[i, idx] = r.lin(ft[:, 0], "itm_head")[:, 1] + (sims[i, idx] if video else 0)
    t2i = torch.full((len(texts), len(data)), -100.0, device=dev)
    k = min(a.k_test, len(data))
    for j in range(len(texts)):
        idx = sims[:, j].topk(k).indices
        _, ft = r.fusion(v_states[idx], t_states[j].repeat(k, 1, 1), m[j].repeat(k, 1))
        t2i[j, idx] = r.lin(ft[:, 0], "itm_head")[:, 1] + (sims[idx, j] if video else 0)
    recall = itm_eval(i2t.cpu().numpy(), t2i.cpu().numpy(), txt2img, img2txt)
    # median ranks as the video scripts report them: floor(median(ranks)) + 1
    tr = [min(int(np.where(np.argsort(row)[::-1] == g)[0][0]) for g in img2txt[i]) for i, row in enumerate(i2t.cpu().numpy())]
    ir = [int(np.where(np.argsort(row)[::-1] == txt2img[j])[0][0]) for j, row in enumerate(t2i.cpu().numpy())]
    recall["txt_mdR"] = float(np.floor(np.median(tr)) + 1)
    recall["img_mdR"] = float(np.floor(np.median(ir)) + 1)
    seconds = time.perf_counter() - start
    print(json.dumps({"items": len(data), "seconds": seconds, "generated_tokens": 0}), file=sys.stderr)
    print(json.dumps({"sims": sims.cpu().tolist(), "scores_i2t": i2t.cpu().tolist(),
                      "scores_t2i": t2i.cpu().tolist(), "recall": recall}))


def rank_answer(r, mem, mem_mask, answers, k):
    """ALBEF/mPLUG rank_answer: first-token probabilities from [CLS], top k, re-scored with
    log p(first) - sum of the answer's token NLL (first token counted twice), softmax, best."""
    F = torch.nn.functional
    dev = mem.device
    L = max(len(x) for x in answers[1])
    answer_ids = torch.tensor([x + [0] * (L - len(x)) for x in answers[1]], device=dev)
    answer_atts = (answer_ids != 0).long()
    k = min(k, len(answers[1]))
    num_ques = mem.shape[0]
    start_ids = answer_ids[0, 0].repeat(num_ques, 1)
    logits = r.decode(start_ids, torch.ones_like(start_ids), mem, mem_mask)[:, 0, :]
    prob_first_token = F.softmax(logits, dim=1).index_select(dim=1, index=answer_ids[:, 1])
    topk_probs, topk_ids = prob_first_token.topk(k, dim=1)
    input_ids = torch.cat([answer_ids.index_select(0, t) for t in topk_ids], 0)
    input_atts = torch.cat([answer_atts.index_select(0, t) for t in topk_ids], 0)
    targets = input_ids.masked_fill(input_ids == 0, -100)
    mem_t, mask_t = mem.repeat_interleave(k, 0), mem_mask.repeat_interleave(k, 0)
    out_logits = r.decode(input_ids, input_atts, mem_t, mask_t)
    shifted = out_logits[:, :-1, :].contiguous()
    labels = targets[:, 1:].contiguous()
    loss = F.cross_entropy(shifted.view(-1, shifted.shape[-1]), labels.view(-1), reduction="none")
    answer_loss = loss.view(input_ids.size(0), -1).sum(1)
    log_probs = torch.cat([topk_probs.view(-1, 1).log(), -answer_loss.view(-1, 1)], dim=1)
    log_probs_sum = log_probs.sum(1).view(num_ques, k)
    probs = F.softmax(log_probs_sum, dim=-1)
    best_p, rerank = probs.topk(1, dim=1)
    best = torch.gather(topk_ids, 1, rerank)
    return [(int(i), float(p)) for i, p in zip(best.view(-1).tolist(), best_p.view(-1).tolist())]


@torch.no_grad()
def video_qa(a, r, d, tok, dev, start):
    """videoqa_mplug.py (reference 3.8): the clip's frames squashed to S (PIL bicubic from the stored
    frames), CLIP-normalised, frame tokens concatenated; [CLS] question; rank_answer over the train
    split's answers (first-seen order) with k_test; exact match."""
    texts, seen = [], set()
    for row in rows(a.data, "train", ["answers"]):
        for ans in row["answers"]:
            if ans not in seen:
                seen.add(ans)
                texts.append(ans)
    answers = (texts, [[101] + tok.encode(t + "[SEP]", add_special_tokens=False) for t in texts])
    cols = ["video_id", "frames", "frame_codec", "width", "height", "question_ids", "question_tokens", "answers"]
    items = []
    for row in rows(a.data, a.split, cols):
        frames = []
        for f in row["frames"]:
            if row["frame_codec"] == "raw":
                img = Image.fromarray(np.frombuffer(f, dtype=np.uint8).reshape(row["height"], row["width"], 3))
            else:
                img = Image.open(io.BytesIO(f)).convert("RGB")
            img = img.resize((d.res, d.res), Image.BICUBIC)
            frames.append(torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).float() / 255.0)
        clip = (torch.stack(frames) - MEAN) / STD
        for qid, toks, ans in zip(row["question_ids"], row["question_tokens"], row["answers"]):
            toks = list(toks)
            if toks[:1] == [101]:
                toks = toks[1:]
            items.append((qid, clip, [101] + toks, ans))
    out = []
    for s in range(0, len(items), a.batch_size):
        batch = items[s : s + a.batch_size]
        imgs = torch.cat([b[1] for b in batch]).to(dev)
        v = r.bridge(r.vit(imgs))
        v = v.reshape(len(batch), -1, v.shape[-1])
        L = max(len(b[2]) for b in batch)
        ids = torch.tensor([b[2] + [0] * (L - len(b[2])) for b in batch], device=dev)
        m = torch.tensor([[1] * len(b[2]) + [0] * (L - len(b[2])) for b in batch], device=dev)
        t = r.text(ids, m)
        fv, ft = r.fusion(v, t, m)
        mem = torch.cat([fv, ft], 1)
        mem_mask = torch.cat([torch.ones(len(batch), fv.shape[1], dtype=torch.long, device=dev), m], 1)
        for b, (idx, prob) in zip(batch, rank_answer(r, mem, mem_mask, answers, a.k_test)):
            out.append({"id": str(b[0]), "text": texts[idx], "prob": prob, "correct": texts[idx] == b[3]})
    seconds = time.perf_counter() - start
    print(json.dumps({"items": len(out), "seconds": seconds, "generated_tokens": 0}), file=sys.stderr)
    print(json.dumps(out))


def clip_tensor(row, res):
    frames = []
    for f in row["frames"]:
        if row["frame_codec"] == "raw":
            img = Image.fromarray(np.frombuffer(f, dtype=np.uint8).reshape(row["height"], row["width"], 3))
        else:
            img = Image.open(io.BytesIO(f)).convert("RGB")
        img = img.resize((res, res), Image.BICUBIC)
        frames.append(torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).float() / 255.0)
    return (torch.stack(frames) - MEAN) / STD


@torch.no_grad()
def video_caption(a, r, d, tok, dev, start):
    """videocap_mplug.py (reference 3.8): frames' tokens concatenated, the decoder over them only;
    prompt ids = tokenizer(prompt).input_ids[:, :-1] with mPLUG's tokenizer ([CLS] + pieces, no
    [SEP]), so the last piece is dropped; beam search; text after the first listed prefix + " .".
    """
    prompt = [101] + tok.encode(a.prompt, add_special_tokens=False)
    prompt = prompt[:-1]
    prefixes = ["a picture of ", "a video of ", "a video clip of ", "a video showing ", "a video tutorial on "]
    data = list(rows(a.data, a.split, ["video_id", "frames", "frame_codec", "width", "height"]))
    out = []
    for s in range(0, len(data), a.batch_size):
        chunk = data[s : s + a.batch_size]
        imgs = torch.cat([clip_tensor(row, d.res) for row in chunk]).to(dev)
        v = r.bridge(r.vit(imgs))
        v = v.reshape(len(chunk), -1, v.shape[-1])
        mask = torch.ones(len(chunk), v.shape[1], dtype=torch.long, device=dev)
        p = torch.tensor([prompt] * len(chunk), device=dev)
        res = r.beam_search(v, mask, a.beam_size, a.min_length, a.max_length, 1, p)
        for row, hyps in zip(chunk, res):
            ids = hyps[0][1]
            text = tok.decode(ids, clean_up_tokenization_spaces=True)
            text = text.replace("[SEP]", "").replace("[CLS]", "").replace("[PAD]", "").strip()
            for pre in prefixes:
                if pre in text:
                    text = text[text.index(pre) + len(pre):]
                    break
            out.append({"id": row["video_id"], "text": text + " .", "tokens": ids})
    seconds = time.perf_counter() - start
    print(json.dumps({"items": len(out), "seconds": seconds, "generated_tokens": 0}), file=sys.stderr)
    print(json.dumps(out))


@torch.no_grad()
def statements(a, r, d, dev, start):
    """SNLI-VE: ALBEF's model_ve.py on mPLUG's encoders: image (squash, CLIP norm), [CLS] +
    hypothesis tokens padded to the longest, text encoder -> fusion -> fused text CLS -> cls_head
    (Linear, ReLU, Linear), argmax. NLVR2 (the pair design): the statement fused with the left and
    with the right image separately, the two fused CLS concatenated (left first) -> cls_head."""
    from mplug_reference import st_read
    F = torch.nn.functional
    head = {k: t.to(dev) for k, t in st_read(a.head).items()}
    pair = a.task == "nlvr2"
    cols = ["sample_id", "width", "height", "image_codec", "image", "statement_ids", "statement_tokens", "labels"]
    if pair:
        cols += ["right_width", "right_height", "right_image_codec", "right_image"]
    items = []
    for row in rows(a.data, a.split, cols):
        xs = [image_tensor(row, d.res)]
        if pair:
            right = {k: row["right_" + k] for k in ["width", "height", "image_codec", "image"]}
            xs.append(image_tensor(right, d.res))
        for sid, toks, label in zip(row["statement_ids"], row["statement_tokens"], row["labels"]):
            items.append((sid, xs, [101] + list(toks), label))
    out = []
    for s in range(0, len(items), a.batch_size):
        batch = items[s : s + a.batch_size]
        L = max(len(b[2]) for b in batch)
        ids = torch.tensor([b[2] + [0] * (L - len(b[2])) for b in batch], device=dev)
        m = torch.tensor([[1] * len(b[2]) + [0] * (L - len(b[2])) for b in batch], device=dev)
        t = r.text(ids, m)
        cls = []
        for f in range(len(batch[0][1])):
            img = ((torch.stack([b[1][f] for b in batch]) - MEAN) / STD).to(dev)
            v = r.bridge(r.vit(img))
            _, ft = r.fusion(v, t, m)
            cls.append(ft[:, 0])
        h = F.relu(F.linear(torch.cat(cls, 1), head["cls_head.0.weight"], head["cls_head.0.bias"]))
        logits = F.linear(h, head["cls_head.2.weight"], head["cls_head.2.bias"])
        for b, p in zip(batch, logits.argmax(-1).tolist()):
            out.append({"id": b[0], "predicted": p, "label": b[3]})
    seconds = time.perf_counter() - start
    print(json.dumps({"items": len(out), "seconds": seconds, "generated_tokens": 0}), file=sys.stderr)
    print(json.dumps(out))


def stored_pil(row):
    if row["image_codec"] == "raw":
        arr = np.frombuffer(row["image"], dtype=np.uint8).reshape(row["height"], row["width"], 3)
        return Image.fromarray(arr)
    return Image.open(io.BytesIO(row["image"])).convert("RGB")


@torch.no_grad()
def grounding(a, r, d, image_cols, dev, start):
    """grounding_mplug.py's evaluation (reference 3.5, 4.3), TransVG-style: long side to S
    (ratio = S / max(w, h), sizes Python-rounded, PIL bilinear), ToTensor, ImageNet Normalize, a zero
    S x S canvas with the image at (round(dh/2 - 0.1), round(dw/2 - 0.1)); text [CLS] + 18 pieces +
    [SEP] padded to 20; 4 greedy steps from [unused339] with bbox_prob_mask; IoU as TransVG."""
    S = d.res
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    cols = image_cols + ["orig_width", "orig_height", "boxes", "sentence_ids", "sentence_refs", "sentence_tokens"]
    items = []
    for row in rows(a.data, a.split, cols):
        w, h = row["orig_width"], row["orig_height"]
        ratio = float(S / float(max(w, h)))
        nw, nh = round(w * ratio), round(h * ratio)
        img = stored_pil(row).resize((nw, nh), Image.BILINEAR)
        x = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).float() / 255.0
        x = (x - mean) / std
        dw, dh = S - nw, S - nh
        top, left = round(dh / 2.0 - 0.1), round(dw / 2.0 - 0.1)
        canvas = torch.zeros(3, S, S)
        canvas[:, top : top + nh, left : left + nw] = x
        for sid, ref, toks in zip(row["sentence_ids"], row["sentence_refs"], row["sentence_tokens"]):
            bx, by, bw, bh = row["boxes"][ref]
            box = torch.tensor([bx, by, bx + bw, by + bh], dtype=torch.float64) * ratio
            box[0] += left; box[2] += left; box[1] += top; box[3] += top
            gt = torch.stack([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2, box[2] - box[0], box[3] - box[1]]) / S
            items.append((row["image_id"], sid, canvas, list(toks), gt))
    if a.limit is not None:
        items = items[: a.limit]
    V = r.d.V
    mask = torch.full((V,), -10000.0, device=dev)
    mask[345 : 345 + 337] = 0.0
    out, saved_img, saved_ids = [], [], []
    for s in range(0, len(items), a.batch_size):
        batch = items[s : s + a.batch_size]
        img = torch.stack([b[2] for b in batch]).to(dev)
        seqs = [[101] + b[3][:18] + [102] for b in batch]
        ids = torch.tensor([q + [0] * (20 - len(q)) for q in seqs], device=dev)
        saved_img.append(img.cpu())
        saved_ids.append(ids.cpu())
        m = torch.tensor([[1] * len(q) + [0] * (20 - len(q)) for q in seqs], device=dev)
        v = r.bridge(r.vit(img))
        t = r.text(ids, m)
        fv, ft = r.fusion(v, t, m)
        mem = torch.cat([fv, ft], 1)
        mem_mask = torch.cat([torch.ones(len(batch), fv.shape[1], dtype=torch.long, device=dev), m], 1)
        seq = torch.full((len(batch), 1), 344, dtype=torch.long, device=dev)
        for _ in range(4):
            logits = r.decode(seq, torch.ones_like(seq), mem, mem_mask)[:, -1, :] + mask
            seq = torch.cat([seq, logits.argmax(-1, keepdim=True)], 1)
        for b, toks in zip(batch, seq[:, 1:].tolist()):
            p = (torch.tensor(toks, dtype=torch.float64) - 345) / 336
            p = torch.stack([p[0] - p[2] / 2, p[1] - p[3] / 2, p[0] + p[2] / 2, p[1] + p[3] / 2]).clamp(0, 1)
            g = b[4]
            g = torch.stack([g[0] - g[2] / 2, g[1] - g[3] / 2, g[0] + g[2] / 2, g[1] + g[3] / 2])
            iw = (torch.min(p[2], g[2]) - torch.max(p[0], g[0])).clamp(min=0)
            ih = (torch.min(p[3], g[3]) - torch.max(p[1], g[1])).clamp(min=0)
            inter = iw * ih
            iou = inter / ((p[2] - p[0]) * (p[3] - p[1]) + (g[2] - g[0]) * (g[3] - g[1]) - inter + 1e-16)
            out.append({"id": f"{b[0]}#{b[1]}", "tokens": toks, "iou": iou.item(), "gt_norm": b[4].tolist()})
    if a.save_inputs:
        from mplug_reference import st_write
        st_write(a.save_inputs, {"images": torch.cat(saved_img), "input_ids": torch.cat(saved_ids)})
    seconds = time.perf_counter() - start
    print(json.dumps({"items": len(out), "seconds": seconds, "generated_tokens": 4 * len(out)}), file=sys.stderr)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
