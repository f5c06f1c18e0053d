"""Independent oracles for `mplug score retrieval` and `mplug score grounding` (issue 17).

retrieval OUT_DIR SEED: writes random score matrices with many ties (scores.safetensors), a
    retrieval test file [{image, caption: [...]}] (test.json), and prints the reference's itm_eval
    numbers (numpy; argsort with kind="stable", the order the reference's default sort gives for
    rows of up to 16 entries and the one mplug documents for ties) with both MdRs and every rank.
grounding REFS INSTANCES OUT SEED: reads refer's pickle with Python's pickle and the boxes from
    instances.json, writes jittered predictions for every expression of the first ref's split to
    OUT, prints that split and every IoU (plain xywh IoU) and the accuracy at 0.5.
"""
import json
import pickle
import sys

import numpy as np


def ranks_i2t(scores, img2txt):
    out = []
    for i, row in enumerate(scores):
        inds = np.argsort(row, kind="stable")[::-1]
        out.append(min(int(np.where(inds == t)[0][0]) for t in img2txt[i]))
    return out


def ranks_t2i(scores, txt2img):
    out = []
    for t, row in enumerate(scores):
        inds = np.argsort(row, kind="stable")[::-1]
        out.append(int(np.where(inds == txt2img[t])[0][0]))
    return out


def recall(ranks, k):
    r = np.array(ranks)
    return 100.0 * len(np.where(r < k)[0]) / len(r)


def retrieval(out_dir, seed):
    sys.path.insert(0, "tests/py")
    import torch
    from mplug_reference import st_write

    rng = np.random.default_rng(seed)
    images = 9
    caps = [int(rng.integers(1, 5)) for _ in range(images)]
    test = [{"image": f"img{i}.jpg", "caption": [f"c{i}_{k}" for k in range(n)]} for i, n in enumerate(caps)]
    txt2img, img2txt = [], []
    for i, n in enumerate(caps):
        img2txt.append(list(range(len(txt2img), len(txt2img) + n)))
        txt2img += [i] * n
    texts = len(txt2img)
    # one decimal: many ties; a bias towards the right pairs so the recalls are not all small
    i2t = np.round(rng.random((images, texts)), 1)
    for i, ts in enumerate(img2txt):
        for t in ts:
            i2t[i, t] = np.round(min(1.0, i2t[i, t] + rng.random() * 0.5), 1)
    t2i = np.round(i2t.T + rng.integers(0, 2, (texts, images)) * 0.1, 1)
    st_write(f"{out_dir}/scores.safetensors",
             {"scores_i2t": torch.from_numpy(i2t), "scores_t2i": torch.from_numpy(t2i.astype(np.float32))})
    json.dump(test, open(f"{out_dir}/test.json", "w"))
    tr, ir = ranks_i2t(i2t, img2txt), ranks_t2i(t2i.astype(np.float32), txt2img)
    tr1, tr5, tr10 = (recall(tr, k) for k in (1, 5, 10))
    ir1, ir5, ir10 = (recall(ir, k) for k in (1, 5, 10))
    trm, irm = (tr1 + tr5 + tr10) / 3, (ir1 + ir5 + ir10) / 3
    print(json.dumps({
        "recall": {"txt_r1": tr1, "txt_r5": tr5, "txt_r10": tr10, "txt_r_mean": trm, "img_r1": ir1,
                   "img_r5": ir5, "img_r10": ir10, "img_r_mean": irm, "r_mean": (trm + irm) / 2},
        "median_rank": {"txt_mdR": float(np.floor(np.median(tr)) + 1), "img_mdR": float(np.floor(np.median(ir)) + 1)},
        "text_ranks": tr, "image_ranks": ir}))


def grounding(refs_path, instances_path, out, seed):
    refs = pickle.load(open(refs_path, "rb"))
    boxes = {a["id"]: a["bbox"] for a in json.load(open(instances_path))["annotations"]}
    split = refs[0]["split"]
    rng = np.random.default_rng(seed)
    results, ious = [], []
    for ref in refs:
        if ref["split"] != split:
            continue
        x, y, w, h = boxes[ref["ann_id"]]
        for sent in ref["sentences"]:
            s = rng.uniform(0.5, 1.6, 2)
            p = [x + rng.normal() * 0.2 * w, y + rng.normal() * 0.2 * h, w * s[0], h * s[1]]
            results.append({"sent_id": sent["sent_id"], "bbox": p})
            iw = max(0.0, min(x + w, p[0] + p[2]) - max(x, p[0]))
            ih = max(0.0, min(y + h, p[1] + p[3]) - max(y, p[1]))
            inter = iw * ih
            ious.append(inter / (w * h + p[2] * p[3] - inter))
    json.dump(results, open(out, "w"))
    correct = sum(1 for v in ious if v >= 0.5)
    print(json.dumps({"split": split, "ious": ious, "correct": correct, "accuracy": 100.0 * correct / len(ious)}))


if __name__ == "__main__":
    if sys.argv[1] == "retrieval":
        retrieval(sys.argv[2], int(sys.argv[3]))
    else:
        grounding(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
