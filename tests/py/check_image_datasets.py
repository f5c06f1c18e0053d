"""Independent checks of image datasets written by mplug, from the original annotation files.

vg DATASET REGIONS_JSON: every row's captions are exactly the region phrases of its image in the
    file (v1.0 or v1.2 keys), in order; prints the number of rows checked.
vqa DATASET FILE...: every question's answers/weights equal the reference's vqa_dataset.py loop
    run on the ALBEF/mPLUG json records or the official annotations; prints questions checked.
flickr DATASET TOKEN_FILE: captions per image equal the token file's lines.
refcoco DATASET REFS_PICKLE INSTANCES_JSON: boxes and sentences per image equal refer's files
    (loaded with Python's pickle, as refer.py does).
nlvr2 DATASET JSONL: statements and labels per image pair equal the file (True=1, False=0).
"""
import glob
import json
import os
import sys

import pyarrow.parquet as pq


def fail(msg):
    print('FAIL: ' + msg)
    sys.exit(1)


def rows(dataset):
    files = sorted(glob.glob(os.path.join(dataset, 'shards', '*.parquet')))
    return pq.read_table(files).to_pylist() if files else []


def vg(dataset, regions_file):
    by_image = {}
    for rec in json.load(open(regions_file)):
        regions = rec['regions']
        image_id = rec.get('image_id', rec.get('id'))
        if image_id is None:
            image_id = regions[0].get('image_id', regions[0].get('image'))
        by_image[str(image_id)] = [r['phrase'] for r in regions if r['phrase'].strip()]
    n = 0
    for r in rows(dataset):
        want = by_image.get(r['image_id'])
        if want != r['captions']:
            fail(f"image {r['image_id']}: captions differ from the file")
        n += 1
    print(n)


def reference_weights(answers, dataset):
    # dataset/vqa_dataset.py (ALBEF/mPLUG), verbatim logic.
    answer_weight = {}
    if dataset == 'vqa':
        for answer in answers:
            if answer in answer_weight.keys():
                answer_weight[answer] += 1 / len(answers)
            else:
                answer_weight[answer] = 1 / len(answers)
    else:
        answer_weight[answers[0]] = 0.5
    return list(answer_weight.keys()), list(answer_weight.values())


def vqa(dataset, files):
    expected = {}
    for f in files:
        v = json.load(open(f))
        if isinstance(v, dict) and 'annotations' in v:
            for a in v['annotations']:
                expected[('vqa', str(a['question_id']))] = [x['answer'] for x in a['answers']]
        elif isinstance(v, list) and v and 'qas' in v[0]:
            for rec in v:
                for qa in rec['qas']:
                    expected[('vg', str(qa['qa_id']))] = [qa['answer']]
        elif isinstance(v, list):
            for rec in v:
                if 'answer' in rec:
                    ans = rec['answer'] if isinstance(rec['answer'], list) else [rec['answer']]
                    expected[(rec.get('dataset', 'vqa'), str(rec['question_id']))] = ans
    n = 0
    for r in rows(dataset):
        for qid, answers, weights in zip(r['question_ids'], r['answers'], r['answer_weights']):
            key = (r['dataset'], qid)
            if key not in expected:
                if answers:
                    fail(f'{key} has answers but none in the files')
                continue
            want_a, want_w = reference_weights(expected[key], r['dataset'])
            if answers != want_a or weights != want_w:
                fail(f'{key}: {answers} {weights} != reference {want_a} {want_w}')
            n += 1
    print(n)


def flickr(dataset, token_file):
    by_image = {}
    for line in open(token_file):
        if not line.strip():
            continue
        key, cap = line.rstrip('\n').split('\t', 1)
        by_image.setdefault(key.split('#')[0], []).append(cap)
    n = 0
    for r in rows(dataset):
        if by_image.get(r['source_path']) != r['captions']:
            fail(f"{r['source_path']}: captions differ")
        n += 1
    print(n)


def refcoco(dataset, refs_file, instances_file):
    import pickle
    refs = pickle.load(open(refs_file, 'rb'), encoding='latin1')
    anns = {a['id']: a for a in json.load(open(instances_file))['annotations']}
    want = {}
    for r in refs:
        key = (str(r['image_id']), r['split'])
        sents = [s['sent'] for s in r['sentences'] if s['sent'].strip()]
        if r['ann_id'] not in anns or not sents:
            continue
        w = want.setdefault(key, {'boxes': [], 'sentences': [], 'refs': []})
        w['refs'].append(len(w['boxes']))
        w['boxes'].append([float(x) for x in anns[r['ann_id']]['bbox']])
        w['sentences'].extend(sents)
    n = 0
    for r in rows(dataset):
        w = want.get((r['image_id'], r['split']))
        if w is None or r['boxes'] != w['boxes'] or r['sentences'] != w['sentences']:
            fail(f"image {r['image_id']} {r['split']}: {r['boxes']} {r['sentences']} != {w}")
        n += 1
    if n != len(want):
        fail(f'{n} rows, {len(want)} images in the files')
    print(n)


def nlvr2(dataset, jsonl):
    want = {}
    for line in open(jsonl):
        if not line.strip():
            continue
        r = json.loads(line)
        pair = r['identifier'].rsplit('-', 1)[0]
        want.setdefault(pair, []).append((r['sentence'], 1 if r['label'] == 'True' else 0))
    n = 0
    for r in rows(dataset):
        if r['num_images'] != 2 or r['right_image'] is None:
            fail(f"{r['sample_id']}: not two images")
        got = list(zip(r['statements'], r['labels']))
        if got != want.get(r['sample_id']):
            fail(f"{r['sample_id']}: {got} != {want.get(r['sample_id'])}")
        n += 1
    print(n)


if __name__ == '__main__':
    mode = sys.argv[1]
    if mode == 'vg':
        vg(sys.argv[2], sys.argv[3])
    elif mode == 'vqa':
        vqa(sys.argv[2], sys.argv[3:])
    elif mode == 'refcoco':
        refcoco(sys.argv[2], sys.argv[3], sys.argv[4])
    elif mode == 'nlvr2':
        nlvr2(sys.argv[2], sys.argv[3])
    elif mode == 'flickr':
        flickr(sys.argv[2], sys.argv[3])
    else:
        fail('unknown mode ' + mode)
