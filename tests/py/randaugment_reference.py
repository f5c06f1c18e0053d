"""The reference's RandomAugment ops (ALBEF/BLIP/mPLUG dataset/randaugment.py, numpy + OpenCV),
transcribed for the parity test: each op applied to IN (raw HWC uint8, W H) with the given
argument, written to OUT.

  randaugment_reference.py OP ARG W H IN OUT
"""
import sys

import cv2
import numpy as np


def autocontrast_func(img, cutoff=0):
    n_bins = 256

    def tune_channel(ch):
        n = ch.size
        cut = cutoff * n // 100
        if cut == 0:
            high, low = ch.max(), ch.min()
        else:
            hist = cv2.calcHist([ch], [0], None, [n_bins], [0, n_bins])
            low = np.argwhere(np.cumsum(hist) > cut)
            low = 0 if low.shape[0] == 0 else low[0]
            high = np.argwhere(np.cumsum(hist[::-1]) > cut)
            high = n_bins - 1 if high.shape[0] == 0 else n_bins - 1 - high[0]
        if high <= low:
            table = np.arange(n_bins)
        else:
            scale = (n_bins - 1) / (high - low)
            offset = -low * scale
            table = np.arange(n_bins) * scale + offset
            table[table < 0] = 0
            table[table > n_bins - 1] = n_bins - 1
        table = table.clip(0, 255).astype(np.uint8)
        return table[ch]

    channels = [tune_channel(ch) for ch in cv2.split(img)]
    return cv2.merge(channels)


def equalize_func(img):
    n_bins = 256

    def tune_channel(ch):
        hist = cv2.calcHist([ch], [0], None, [n_bins], [0, n_bins])
        non_zero_hist = hist[hist != 0].reshape(-1)
        step = np.sum(non_zero_hist[:-1]) // (n_bins - 1)
        if step == 0:
            return ch
        n = np.empty_like(hist)
        n[0] = step // 2
        n[1:] = hist[:-1]
        table = (np.cumsum(n) // step).clip(0, 255).astype(np.uint8)
        return table[ch]

    channels = [tune_channel(ch) for ch in cv2.split(img)]
    return cv2.merge(channels)


def rotate_func(img, degree, fill=(0, 0, 0)):
    H, W = img.shape[0], img.shape[1]
    center = W / 2, H / 2
    M = cv2.getRotationMatrix2D(center, degree, 1)
    return cv2.warpAffine(img, M, (W, H), borderValue=fill)


def brightness_func(img, factor):
    table = (np.arange(256, dtype=np.float32) * factor).clip(0, 255).astype(np.uint8)
    return table[img]


def sharpness_func(img, factor):
    kernel = np.ones((3, 3), dtype=np.float32)
    kernel[1][1] = 5
    kernel /= 13
    degenerate = cv2.filter2D(img, -1, kernel)
    if factor == 0.0:
        out = degenerate
    elif factor == 1.0:
        out = img
    else:
        out = img.astype(np.float32)
        degenerate = degenerate.astype(np.float32)[1:-1, 1:-1, :]
        out[1:-1, 1:-1, :] = degenerate + factor * (out[1:-1, 1:-1, :] - degenerate)
        out = out.astype(np.uint8)
    return out


def shear_x_func(img, factor, fill=(0, 0, 0)):
    H, W = img.shape[0], img.shape[1]
    M = np.float32([[1, factor, 0], [0, 1, 0]])
    return cv2.warpAffine(img, M, (W, H), borderValue=fill, flags=cv2.INTER_LINEAR).astype(np.uint8)


def translate_x_func(img, offset, fill=(0, 0, 0)):
    H, W = img.shape[0], img.shape[1]
    M = np.float32([[1, 0, -offset], [0, 1, 0]])
    return cv2.warpAffine(img, M, (W, H), borderValue=fill, flags=cv2.INTER_LINEAR).astype(np.uint8)


def translate_y_func(img, offset, fill=(0, 0, 0)):
    H, W = img.shape[0], img.shape[1]
    M = np.float32([[1, 0, 0], [0, 1, -offset]])
    return cv2.warpAffine(img, M, (W, H), borderValue=fill, flags=cv2.INTER_LINEAR).astype(np.uint8)


def shear_y_func(img, factor, fill=(0, 0, 0)):
    H, W = img.shape[0], img.shape[1]
    M = np.float32([[1, 0, 0], [factor, 1, 0]])
    return cv2.warpAffine(img, M, (W, H), borderValue=fill, flags=cv2.INTER_LINEAR).astype(np.uint8)


FILL = (128, 128, 128)
OPS = {
    'Identity': lambda img, a: img,
    'AutoContrast': lambda img, a: autocontrast_func(img),
    'Equalize': lambda img, a: equalize_func(img),
    'Brightness': brightness_func,
    'Sharpness': sharpness_func,
    'ShearX': lambda img, a: shear_x_func(img, a, FILL),
    'ShearY': lambda img, a: shear_y_func(img, a, FILL),
    'TranslateX': lambda img, a: translate_x_func(img, a, FILL),
    'TranslateY': lambda img, a: translate_y_func(img, a, FILL),
    'Rotate': lambda img, a: rotate_func(img, a, FILL),
}

if __name__ == '__main__':
    op, arg, w, h, src, dst = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
    img = np.fromfile(src, dtype=np.uint8).reshape(h, w, 3)
    np.ascontiguousarray(OPS[op](img, arg)).astype(np.uint8).tofile(dst)
