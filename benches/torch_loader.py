"""The reference-style PyTorch input pipeline, timed: an ALBEF/mPLUG json list of {image, caption},
JPEG files opened with Pillow (.convert('RGB')), torchvision RandomResizedCrop(size, scale=(0.5, 1),
BICUBIC) + RandomHorizontalFlip + ToTensor + Normalize(CLIP) (dataset/__init__.py), pre_caption,
a torch DataLoader with N workers. Prints one JSON line.

  torch_loader.py ANNOTATIONS.json IMAGE_ROOT --batch-size 64 --size 384 --workers 2 --batches 50
"""
import argparse
import json
import os
import re
import time

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms
from torchvision.transforms import InterpolationMode

ap = argparse.ArgumentParser()
ap.add_argument('ann')
ap.add_argument('root')
ap.add_argument('--batch-size', type=int, default=64)
ap.add_argument('--size', type=int, default=384)
ap.add_argument('--workers', type=int, default=2)
ap.add_argument('--batches', type=int, default=50)
ap.add_argument('--eval', action='store_true')
ap.add_argument('--randaugment', action='store_true')
a = ap.parse_args()

import numpy as np  # noqa: E402
import sys  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'tests', 'py'))
from randaugment_reference import OPS  # noqa: E402  (the reference's op functions)


class RandomAugment:
    """The reference's RandomAugment(2, 7, isPIL=True, augs=[the 10 ops])."""
    names = ['Identity', 'AutoContrast', 'Equalize', 'Brightness', 'Sharpness', 'ShearX', 'ShearY',
             'TranslateX', 'TranslateY', 'Rotate']

    def __call__(self, img):
        img = np.array(img)
        for name in np.random.choice(self.names, 2):
            if np.random.random() > 0.5:
                continue
            level = 7 / 10
            arg = {'Brightness': level * 1.8 + 0.1, 'Sharpness': level * 1.8 + 0.1,
                   'ShearX': level * 0.3, 'ShearY': level * 0.3, 'TranslateX': level * 10.0,
                   'TranslateY': level * 10.0}.get(name, 0.0)
            if name in ('ShearX', 'ShearY', 'TranslateX', 'TranslateY') and np.random.random() > 0.5:
                arg = -arg
            if name == 'Rotate':
                arg = level * 30 * (-1 if np.random.random() < 0.5 else 1)
            img = OPS[name](img, arg)
        return img


def pre_caption(caption, max_words):
    caption = re.sub(r"([,.'!?\"()*#:;~])", '', caption.lower()).replace('-', ' ').replace('/', ' ')
    caption = re.sub(r'\s{2,}', ' ', caption).rstrip('\n').strip(' ')
    return ' '.join(caption.split(' ')[:max_words])


norm = transforms.Normalize((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))
if a.eval:
    tf = transforms.Compose([transforms.Resize((a.size, a.size), interpolation=InterpolationMode.BICUBIC),
                             transforms.ToTensor(), norm])
else:
    tf = transforms.Compose([
        transforms.RandomResizedCrop(a.size, scale=(0.5, 1.0), interpolation=InterpolationMode.BICUBIC),
        transforms.RandomHorizontalFlip()] + ([RandomAugment()] if a.randaugment else []) +
        [transforms.ToTensor(), norm])


class PretrainDataset(Dataset):
    def __init__(self, ann, root):
        self.ann = json.load(open(ann))
        self.root = root

    def __len__(self):
        return len(self.ann)

    def __getitem__(self, i):
        rec = self.ann[i]
        cap = rec['caption']
        if isinstance(cap, list):
            cap = cap[torch.randint(len(cap), (1,)).item()]
        img = Image.open(os.path.join(self.root, rec['image'])).convert('RGB')
        return tf(img), pre_caption(cap, 30)


dl = DataLoader(PretrainDataset(a.ann, a.root), batch_size=a.batch_size, shuffle=True,
                num_workers=a.workers, drop_last=True, persistent_workers=a.workers > 0)


def batches():
    while True:
        yield from dl


it = batches()
for _ in range(2):
    next(it)
t = time.perf_counter()
n = 0
for _ in range(a.batches):
    x, _ = next(it)
    n += x.shape[0]
secs = time.perf_counter() - t
print(json.dumps({'samples_per_s': n / secs, 'workers': a.workers, 'batch_size': a.batch_size,
                  'size': a.size, 'train_augment': not a.eval, 'randaugment': a.randaugment}))
