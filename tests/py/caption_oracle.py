"""The official caption metrics as the oracle for `mplug score caption` (tests/it/eval.rs).

  caption_oracle.py make DIR        write DIR/annotations.json (COCO captions) and DIR/results.json:
                                    generated hard cases (punctuation, quotes, brackets, contractions,
                                    possessives, numbers and number words, abbreviations, unicode,
                                    curly quotes, empty and very long captions, ties)
  caption_oracle.py score ANN RES   pycocoevalcap 1.2: PTBTokenizer (its Java jar), Bleu(4), Rouge,
                                    Cider and Meteor (its jar), called one by one (COCOEvalCap.evaluate
                                    would also build SPICE, which needs a download); prints JSON
  caption_oracle.py meteor-jar      prints the path of the METEOR 1.5 jar pycocoevalcap ships
"""
import json
import random
import sys

WORDS = ["a", "man", "dog", "cat", "on", "the", "couch", "riding", "wave", "of", "two", "three",
         "red", "white", "sits", "next", "to", "with", "in", "street", "bus", "is", "are", "people",
         "standing", "near", "table", "pizza", "plate", "ten", "one", "zero"]
PIECES = [
    "The man's dog isn't here", "they're gone", "can't", "won't", "I'm", "we've", "you'll", "he'd",
    "dogs' bowls", "James' car", "gonna", "wanna", "cannot", "Mr. Smith", "the U.S.", "3 p.m.",
    "Jan. 5", "e.g.", "$5", "50%", "£3", "€4", "3.5", "10,000", "3:30", "1/2", "10-year-old",
    "hot-dog", "e-mail", "--", "...", "!!!", "??", "(very fluffy)", "[red]", "{soft}", '"quoted"',
    "'single'", "“curly”", "it’s", "can’t", "Café", "crème brûlée", "naïve", "ΟΔΟΣ", "ÜBER",
    "straße", "colour", "grey", "o'clock", "ma'am", "1,000,000", "7.5", "no.", "etc.", "vs.",
    "St. Louis", "a.b.c", "mouse.a", "U.S.A.", "z.", "'90s", "rock 'n' roll", "–", "—", "…",
    "x=y", "a+b", "AT&T", "Q&A", "$", "#", "&", ";", ":", ",", ".", "?", "!", "-",
    "ONE", "Two", "a DOG", "A", "  spaced   out  ", "\ttab", ":)",
    "No. 5", "no.7", "no.", "fig. 3", "Ph.D.", "Calif.", "Sat.", "Dept.", "oz.", "Tues.", "Mme.",
    "4 1/2", "about 12 3/4.", "e.g...", "mr..", "I'm", "y.o.", "A.M.", "pp. 12", "Figs. 2", "fig.",
    "art.", "op. 9",
]


def sentence(rng, n):
    out = []
    for _ in range(n):
        out.append(rng.choice(PIECES) if rng.random() < 0.3 else rng.choice(WORDS))
    s = " ".join(out)
    if rng.random() < 0.5:
        s += rng.choice([".", "!", "?", " .", "..."])
    return s


def make(out_dir):
    rng = random.Random(17)
    images, anns, results = [], [], []
    aid = 1
    for img in range(1, 61):
        images.append({"id": img, "file_name": f"{img}.jpg"})
        for _ in range(rng.choice([1, 3, 5])):
            anns.append({"id": aid, "image_id": img, "caption": sentence(rng, rng.randint(3, 15))})
            aid += 1
        kind = img % 10
        if kind == 0:
            cap = ""                                   # empty candidate
        elif kind == 1:
            cap = sentence(rng, 400)                   # very long candidate
        elif kind == 2:
            cap = anns[-1]["caption"]                  # identical to a reference
        elif kind == 3:
            cap = "...!!! ,"                           # punctuation only
        else:
            cap = sentence(rng, rng.randint(2, 14))
        results.append({"image_id": img, "caption": cap})
    # every piece appears at least once in a reference and in a result
    img = 61
    for piece in PIECES:
        images.append({"id": img, "file_name": f"{img}.jpg"})
        anns.append({"id": aid, "image_id": img, "caption": f"a {piece} b"})
        aid += 1
        results.append({"image_id": img, "caption": f"{piece} a"})
        img += 1
    with open(f"{out_dir}/annotations.json", "w") as f:
        json.dump({"images": images, "annotations": anns}, f, ensure_ascii=False)
    with open(f"{out_dir}/results.json", "w") as f:
        json.dump(results, f, ensure_ascii=False)


def score(ann_path, res_path):
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    anns = json.load(open(ann_path))["annotations"]
    res = json.load(open(res_path))
    ids = [r["image_id"] for r in res]
    gts = {i: [] for i in ids}
    for a in anns:
        if a["image_id"] in gts:
            gts[a["image_id"]].append({"caption": a["caption"]})
    rs = {r["image_id"]: [{"caption": r["caption"]}] for r in res}
    tok = PTBTokenizer()
    gts_t, res_t = tok.tokenize(gts), tok.tokenize(rs)
    out = {"metrics": {}, "per_image": {str(i): {} for i in ids},
           "tokenized": {"references": {str(i): gts_t[i] for i in ids},
                         "results": {str(i): res_t[i][0] for i in ids}}}
    for scorer, names in [(Bleu(4), ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4"]),
                          (Rouge(), ["ROUGE_L"]), (Cider(), ["CIDEr"]), (Meteor(), ["METEOR"])]:
        if isinstance(scorer, Bleu):
            corpus, per = scorer.compute_score(gts_t, res_t, verbose=0)
        else:
            corpus, per = scorer.compute_score(gts_t, res_t)
        if len(names) == 1:
            corpus, per = [corpus], [per]
        for name, c, p in zip(names, corpus, per):
            out["metrics"][name] = float(c)
            for i, v in zip(gts_t.keys(), p):
                out["per_image"][str(i)][name] = float(v)
    print(json.dumps(out, ensure_ascii=False))


def meteor_jar():
    import os
    from pycocoevalcap.meteor import meteor
    print(os.path.join(os.path.dirname(meteor.__file__), "meteor-1.5.jar"))


if __name__ == "__main__":
    {"make": lambda: make(sys.argv[2]), "score": lambda: score(sys.argv[2], sys.argv[3]),
     "meteor-jar": meteor_jar}[sys.argv[1]]()
