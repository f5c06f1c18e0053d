"""The official VQA evaluation as the oracle for `mplug score vqa` (tests/it/eval.rs).

  vqa_oracle.py make DIR                  write DIR/annotations.json, DIR/questions.json (VQA v2
                                          format) and DIR/results.json: generated hard cases
  vqa_oracle.py score ANN QUES RES MODE   MODE legacy: the vqa_tools copy in salesforce-lavis
                                          (installed without its dependencies; the pre-2021 official
                                          code, as mPLUG's copy); MODE official: the same class with
                                          `evaluate` as GT-Vision-Lab/VQA commit a013f00 ("Fixed
                                          processing answers bug") has it. Prints the accuracy dict
                                          and evalQA as JSON.
"""
import importlib.util
import json
import os
import random
import sys

import lavis_path  # noqa: F401  (sets LAVIS_VQA_TOOLS)


def load(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(lavis_path.LAVIS_VQA_TOOLS, name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


ANSWERS = ["yes", "no", "2", "two", "Two", "a dog", "dog", "the dog", "t-shirt", "t shirt", "yes!",
           "dont know", "don't know", "isnt", "1,000", "1000", "3.", "3", "2.5", "red, white",
           "red white", "café", "CAFÉ", " yes ", "yes\n", "none", "0", "zero", "ten", "10",
           "www.flickr.com", "a/b", "(left)", "left", "hes", "he's", "Im", "oclock", "o'clock",
           "x" * 300, "", "...", "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z.a.b.c.d.e.f.g.h.",
           "٣", "3,5", "<3", "@home", "100%", "#1", "a;b", "q&a", "don't", "somebody'd"]
QTYPES = ["what color is the", "how many", "is the", "what is", "none of the above"]
ATYPES = ["yes/no", "number", "other"]


def make(out_dir):
    rng = random.Random(23)
    anns, qs, res = [], [], []
    for qid in range(1, 401):
        kind = qid % 4
        if kind == 0:
            gts = [rng.choice(ANSWERS)] * 10                       # unanimous
        elif kind == 1:
            a, b = rng.sample(ANSWERS, 2)
            k = rng.randint(0, 10)
            gts = [a] * k + [b] * (10 - k)
            rng.shuffle(gts)
        else:
            gts = [rng.choice(ANSWERS) for _ in range(10)]
        anns.append({"question_id": qid, "image_id": qid // 3, "question_type": rng.choice(QTYPES),
                     "answer_type": rng.choice(ATYPES), "multiple_choice_answer": gts[0],
                     "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": i + 1}
                                 for i, a in enumerate(gts)]})
        qs.append({"question_id": qid, "image_id": qid // 3, "question": f"q{qid}?"})
        pred = rng.choice(gts) if rng.random() < 0.6 else rng.choice(ANSWERS)
        res.append({"question_id": qid, "answer": pred})
    json.dump({"annotations": anns}, open(f"{out_dir}/annotations.json", "w"), ensure_ascii=False)
    header = {"info": {}, "task_type": "Open-Ended", "data_type": "mscoco",
              "data_subtype": "val2014", "license": {}}
    json.dump({**header, "questions": qs}, open(f"{out_dir}/questions.json", "w"),
              ensure_ascii=False)
    json.dump(res, open(f"{out_dir}/results.json", "w"), ensure_ascii=False)


def official_evaluate(self, quesIds=None):
    """GT-Vision-Lab/VQA a013f00 `VQAEval.evaluate`, the per-question loop (Python 3 spelling)."""
    if quesIds is None:
        quesIds = [q for q in self.params["question_id"]]
    gts = {q: self.vqa.qa[q] for q in quesIds}
    res = {q: self.vqaRes.qa[q] for q in quesIds}
    accQA, accQuesType, accAnsType = [], {}, {}
    for quesId in quesIds:
        for ansDic in gts[quesId]["answers"]:
            ansDic["answer"] = ansDic["answer"].replace("\n", " ").replace("\t", " ").strip()
        resAns = res[quesId]["answer"].replace("\n", " ").replace("\t", " ").strip()
        gtAcc = []
        gtAnswers = [ans["answer"] for ans in gts[quesId]["answers"]]
        if len(set(gtAnswers)) > 1:
            for ansDic in gts[quesId]["answers"]:
                ansDic["answer"] = self.processPunctuation(ansDic["answer"])
                ansDic["answer"] = self.processDigitArticle(ansDic["answer"])
            resAns = self.processPunctuation(resAns)
            resAns = self.processDigitArticle(resAns)
        for gtAnsDatum in gts[quesId]["answers"]:
            otherGTAns = [item for item in gts[quesId]["answers"] if item != gtAnsDatum]
            matchingAns = [item for item in otherGTAns if item["answer"] == resAns]
            gtAcc.append(min(1, float(len(matchingAns)) / 3))
        quesType, ansType = gts[quesId]["question_type"], gts[quesId]["answer_type"]
        avgGTAcc = float(sum(gtAcc)) / len(gtAcc)
        accQA.append(avgGTAcc)
        accQuesType.setdefault(quesType, []).append(avgGTAcc)
        accAnsType.setdefault(ansType, []).append(avgGTAcc)
        self.setEvalQA(quesId, avgGTAcc)
        self.setEvalQuesType(quesId, quesType, avgGTAcc)
        self.setEvalAnsType(quesId, ansType, avgGTAcc)
    self.setAccuracy(accQA, accQuesType, accAnsType)


def score(ann, ques, res, mode):
    vqa_mod, eval_mod = load("vqa"), load("vqa_eval")
    sys.stdout, real = open(os.devnull, "w"), sys.stdout  # the loaders' and evaluator's chatter
    vqa = vqa_mod.VQA(ann, ques)
    vqa_res = vqa.loadRes(res, ques)
    ev = eval_mod.VQAEval(vqa, vqa_res, n=2)
    if mode == "official":
        official_evaluate(ev)
    else:
        ev.evaluate()
    sys.stdout = real
    print(json.dumps({"accuracy": ev.accuracy, "evalQA": {str(k): v for k, v in ev.evalQA.items()}}))


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2])
    else:
        score(*sys.argv[2:6])
