"""Writes N photo-sized JPEGs of random colour blocks (seeded) for the
serve load benchmark's writer: python3 make_images.py OUT_DIR [N] [W] [H]."""
import os
import random
import sys

from PIL import Image, ImageDraw

out = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
w = int(sys.argv[3]) if len(sys.argv) > 3 else 1024
h = int(sys.argv[4]) if len(sys.argv) > 4 else 768
os.makedirs(out, exist_ok=True)
rng = random.Random(13)
for i in range(n):
    im = Image.new("RGB", (w, h), tuple(rng.randrange(256) for _ in range(3)))
    d = ImageDraw.Draw(im)
    for _ in range(12):
        x, y = rng.randrange(w), rng.randrange(h)
        d.rectangle([x, y, x + rng.randrange(w // 2), y + rng.randrange(h // 2)], fill=tuple(rng.randrange(256) for _ in range(3)))
    im.save(os.path.join(out, f"photo{i:04d}.jpg"), quality=85)
