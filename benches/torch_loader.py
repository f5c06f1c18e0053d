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
a = ap.parse_args()


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
        transforms.RandomHorizontalFlip(), transforms.ToTensor(), norm])


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
                  'size': a.size, 'train_augment': not a.eval}))
