#!/usr/bin/env python3
"""Writes the progressive JPEG fixtures of the 1/8-scale DC decoder's tests
(`src/color/jpeg_dc.rs`): files made by libjpeg (through Pillow), whose
default progressive script codes the DC coefficients in an interleaved
first scan at reduced precision (Al = 1) and a refinement scan (Ah = 1),
which the pure-Rust encoder the tests also use does not write.

    python3 make_fixtures.py   # Pillow; writes *.jpg next to this file

Each image is 203 x 117 (partial MCUs on both axes): smooth gradients with
a few sharp-edged patches, like a photo.
"""
import os

from PIL import Image

W, H = 203, 117


def picture():
    img = Image.new("RGB", (W, H))
    px = img.load()
    for y in range(H):
        for x in range(W):
            r, g, b = x * 255 // W, y * 255 // H, (x + 2 * y) * 255 // (W + 2 * H)
            if 40 <= x < 90 and 30 <= y < 70:
                r, g, b = 230, 25, 75
            if (x - 150) ** 2 + (y - 60) ** 2 < 400:
                r, g, b = 60, 180, 75
            px[x, y] = (r, g, b)
    return img


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    img = picture()
    # subsampling: 0 = 4:4:4, 2 = 4:2:0.
    img.save(os.path.join(here, "progressive_420.jpg"), quality=90, progressive=True, subsampling=2)
    img.save(os.path.join(here, "progressive_444.jpg"), quality=90, progressive=True, subsampling=0)
    img.save(
        os.path.join(here, "progressive_420_restart.jpg"),
        quality=90, progressive=True, subsampling=2, restart_marker_blocks=5,
    )
    img.convert("L").save(os.path.join(here, "progressive_grey.jpg"), quality=90, progressive=True)


if __name__ == "__main__":
    main()
