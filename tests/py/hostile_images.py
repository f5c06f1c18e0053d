"""Writes the image variants of issue 23 (classes 4, 8, 9) over existing files, as a user's web-scraped
or converted data would hold them: 16-bit PNG in every colour type, GIF (still, animated, with a
transparent index), WebP (lossless and lossy, with and without alpha), BMP, TIFF (plain, LZW, deflate, grey, 16-bit),
a JPEG whose EXIF next-IFD pointer loops to itself, and PNG metadata bombs.

Usage: hostile_images.py good FILE...   one variant per file, in order (fails if too few files)
       hostile_images.py bombs FILE...  metadata bombs, one per file
Prints one line per file: `<name> <variant>`. Content does not match the extension on purpose:
readers sniff the bytes, as Pillow does.
"""
import io
import struct
import sys
import zlib

import numpy as np
from PIL import Image

RNG = np.random.default_rng(23)


def chunk(kind, data):
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))


def png16(color_type, channels, w=29, h=17):
    """A 16-bit PNG written by hand (Pillow cannot write 16-bit colour): values span 0..65535 with
    a row of small values (below 256), where clipping and rescaling differ most."""
    a = RNG.integers(0, 65536, size=(h, w, channels), dtype=np.uint32)
    a[0] = RNG.integers(0, 256, size=(w, channels))
    a[1, :4, 0] = [0, 255, 256, 65535]
    raw = b''.join(b'\0' + a[y].astype('>u2').tobytes() for y in range(h))
    ihdr = struct.pack('>IIBBBBB', w, h, 16, color_type, 0, 0, 0)
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', zlib.compress(raw))
            + chunk(b'IEND', b''))


def scene(w=41, h=27, mode='RGB'):
    """Smooth gradients plus noise: structure for lossy codecs, noise for off-by-one errors."""
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 // w, y * 255 // h, (x + y) * 127 // (w + h)], -1)
    noise = RNG.integers(0, 40, size=(h, w, 3))
    img = Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8), 'RGB')
    return img.convert(mode) if mode != 'RGB' else img


def save(img, fmt, **kw):
    out = io.BytesIO()
    img.save(out, fmt, **kw)
    return out.getvalue()


def rgba():
    img = scene().convert('RGBA')
    alpha = Image.fromarray(RNG.integers(0, 256, size=(27, 41), dtype=np.uint8), 'L')
    img.putalpha(alpha)
    return img


def gif_animated():
    frames = [scene().quantize(64), scene().quantize(64)]
    return save(frames[0], 'GIF', save_all=True, append_images=frames[1:], duration=100, loop=0)


def gif_transparent():
    p = scene().quantize(32)
    return save(p, 'GIF', transparency=3)


def jpeg_looping_exif():
    """Orientation 6 in IFD0, whose next-IFD pointer points back at IFD0 itself."""
    tiff = b'II*\0' + struct.pack('<I', 8)
    ifd0 = struct.pack('<H', 1) + struct.pack('<HHIHH', 0x0112, 3, 1, 6, 0) + struct.pack('<I', 8)
    app1 = b'Exif\0\0' + tiff + ifd0
    jpeg = save(scene(), 'JPEG', quality=90)
    return jpeg[:2] + b'\xff\xe1' + struct.pack('>H', len(app1) + 2) + app1 + jpeg[2:]


GOOD = [
    ('png16-grey', lambda: png16(0, 1)),
    ('png16-grey-alpha', lambda: png16(4, 2)),
    ('png16-rgb', lambda: png16(2, 3)),
    ('png16-rgba', lambda: png16(6, 4)),
    ('gif-still', lambda: save(scene().quantize(256), 'GIF')),
    ('gif-animated', gif_animated),
    ('gif-transparent', gif_transparent),
    ('webp-lossless', lambda: save(scene(), 'WEBP', lossless=True)),
    ('webp-lossless-alpha', lambda: save(rgba(), 'WEBP', lossless=True)),
    ('webp-lossy', lambda: save(scene(w=160, h=97), 'WEBP', quality=50)),
    ('webp-lossy-alpha', lambda: save(rgba(), 'WEBP', quality=75)),
    ('bmp-rgb', lambda: save(scene(), 'BMP')),
    ('bmp-palette', lambda: save(scene().quantize(100), 'BMP')),
    ('tiff-raw', lambda: save(scene(), 'TIFF')),
    ('tiff-lzw', lambda: save(scene(), 'TIFF', compression='tiff_lzw')),
    ('tiff-deflate-grey', lambda: save(scene(mode='L'), 'TIFF', compression='tiff_adobe_deflate')),
    ('tiff-rgba', lambda: save(rgba(), 'TIFF', compression='tiff_lzw')),
    ('jpeg-looping-exif', jpeg_looping_exif),
]


def png_with(extra):
    return save(scene(), 'PNG')[:33] + extra + save(scene(), 'PNG')[33:]


def inflates_to(n):
    return zlib.compress(b'\0' * n, 9)


BOMBS = [
    ('png-iccp-256MiB', lambda: png_with(chunk(b'iCCP', b'icc\0\0' + inflates_to(256 << 20)))),
    ('png-ztxt-2MiB', lambda: png_with(chunk(b'zTXt', b'Comment\0\0' + inflates_to(2 << 20)))),
    ('png-itxt-2MiB', lambda: png_with(chunk(b'iTXt', b'Comment\0\1\0\0\0' + inflates_to(2 << 20)))),
]


def main():
    mode, files = sys.argv[1], sys.argv[2:]
    variants = {'good': GOOD, 'bombs': BOMBS}[mode]
    if len(files) < len(variants):
        sys.exit(f'need {len(variants)} files, got {len(files)}')
    for path, (name, make) in zip(files, variants):
        with open(path, 'wb') as f:
            f.write(make())
        print(path.rsplit('/', 1)[-1], name)


if __name__ == '__main__':
    main()
