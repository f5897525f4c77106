#!/usr/bin/env python3
"""Image ingest per core: chromatica's histogram of an image file against the
original service's pipeline, reproduced, on the same files (issue 15, item 5).

    python3 crates/chromatica-bench/python/ingest.py --images DIR [--rounds 3] [--save FILE]

DIR is searched recursively for .jpg/.jpeg/.png files of at least
``--min-megapixels`` (default 1: photos, not icons); make_dataset.py's
wallpapers are in /tmp/chromatica-dev-imgs/x after it ran. Both sides run
in this one process on one core, file by file, timed around the call that
turns a path into a 1152-bin histogram:

- chromatica: ``chromatica.histogram(path)`` (decode, JPEGs of >= 512 px at
  1/2 or 1/4 scale in the DCT domain and of >= 2048 px at 1/8 from their DC
  coefficients alone, area downscale to <= 256 px,
  sRGB -> Lab, tri-linear soft histogram), one thread.
- the original's pipeline: Pillow ``Image.open`` + ``draft("RGB", (256,
  256))`` (Pillow's reduced-size JPEG decoding in the DCT domain), RGB,
  ``thumbnail((256, 256))`` (Pillow's antialiased resize), scikit-image
  ``rgb2lab``, and the same soft histogram as make_dataset.py, in numpy.

Rounds alternate which side goes first; per file the fastest round counts
(the machine is shared and noisy). Prints images/s per side and format,
the ratios, PASS/FAIL against the targets (JPEG >= 2.5x, all files >= 2x),
and how far the two histograms of each file lie apart (L1, of a possible 2):
the two pipelines decode at different reduced sizes and resize with
different filters, so they differ by that much; chromatica's own
conformance tolerances are checked by its tests, not here.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

L_BINS, A_BINS, B_BINS = 8, 12, 12
RANGES = np.array([[0.0, 100.0], [-86.0, 98.0], [-108.0, 95.0]])
BINS = np.array([L_BINS, A_BINS, B_BINS])


def soft_hist(lab):
    """(n, 3) Lab -> 1152 L1-normalised tri-linear soft histogram (as make_dataset.py)."""
    c = (np.clip(lab, RANGES[:, 0], RANGES[:, 1]) - RANGES[:, 0]) / (RANGES[:, 1] - RANGES[:, 0]) * BINS
    i = np.clip(np.floor(c), 0, BINS - 2).astype(np.int64)
    f = np.clip(c - i, 0.0, 1.0)
    h = np.zeros(L_BINS * A_BINS * B_BINS)
    for dl in (0, 1):
        wl = f[:, 0] if dl else 1 - f[:, 0]
        for da in (0, 1):
            wa = f[:, 1] if da else 1 - f[:, 1]
            for db in (0, 1):
                wb = f[:, 2] if db else 1 - f[:, 2]
                idx = (i[:, 0] + dl) * (A_BINS * B_BINS) + (i[:, 1] + da) * B_BINS + (i[:, 2] + db)
                np.add.at(h, idx, wl * wa * wb)
    return (h / h.sum()).astype(np.float32)


def original(path):
    from PIL import Image  # imported here: the unit tests need numpy only
    from skimage.color import rgb2lab
    with Image.open(path) as im:
        im.draft("RGB", (256, 256))
        im = im.convert("RGB")
        im.thumbnail((256, 256))
        rgb = np.asarray(im, dtype=np.float64) / 255.0
    return soft_hist(rgb2lab(rgb).reshape(-1, 3))


def ours(path):
    import chromatica
    return chromatica.histogram(path)


def files_in(root):
    out = []
    for d, _, names in os.walk(root):
        for n in names:
            if n.lower().endswith((".jpg", ".jpeg", ".png")):
                out.append(os.path.join(d, n))
    return sorted(out)


def kind(path):
    return "png" if path.lower().endswith(".png") else "jpeg"


TARGETS = (("JPEG", 2.5), ("all", 2.0))


def report(rows, title):
    """The table and the target verdicts for per-file rows (kind, pixels,
    chromatica_s, original_s, l1): images/s is files over the summed best
    times, the ratio the original's time over ours."""
    lines = [title, "", "| files | count | megapixels (median) | chromatica images/s | original images/s | ratio | "
             "L1 apart: median (max) |", "|---|---:|---:|---:|---:|---:|---:|"]
    ratio = {}
    for label, sel in (("JPEG", "jpeg"), ("PNG", "png"), ("all", None)):
        rs = [r for r in rows if sel is None or r["kind"] == sel]
        if not rs:
            continue
        ours_s = sum(r["chromatica_s"] for r in rs)
        theirs_s = sum(r["original_s"] for r in rs)
        ratio[label] = theirs_s / ours_s
        l1s = sorted(r["l1"] for r in rs)
        mp = sorted(r["pixels"] for r in rs)[len(rs) // 2] / 1e6
        lines.append(f"| {label} | {len(rs)} | {mp:.1f} | {len(rs) / ours_s:.1f} | {len(rs) / theirs_s:.1f} | "
                     f"{ratio[label]:.2f}× | {l1s[len(l1s) // 2]:.3f} ({l1s[-1]:.3f}) |")
    lines += ["", "| target | measured | result |", "|---|---|---|"]
    for label, want in TARGETS:
        if label in ratio:
            ok = "PASS" if ratio[label] >= want else "FAIL"
            lines.append(f"| {label}: ≥ {want}× the original's pipeline per core | {ratio[label]:.2f}× | {ok} |")
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--limit", type=int, default=0, help="at most this many files (0: all)")
    ap.add_argument("--min-megapixels", type=float, default=1.0,
                    help="skip smaller files (icons, previews): the target is large photos")
    ap.add_argument("--save", help="write every per-file figure as JSON here")
    a = ap.parse_args()
    import chromatica
    chromatica.set_num_threads(1)
    from PIL import Image
    files = []
    for f in files_in(a.images):
        with Image.open(f) as im:
            if im.size[0] * im.size[1] >= a.min_megapixels * 1e6:
                files.append(f)
    if a.limit:
        files = files[: a.limit]
    if not files:
        sys.exit(f"no .jpg/.jpeg/.png files under {a.images}")
    sides = {"chromatica": ours, "original": original}
    best = {s: [float("inf")] * len(files) for s in sides}
    hists = {}
    for r in range(a.rounds):
        order = list(sides) if r % 2 == 0 else list(sides)[::-1]
        for s in order:
            for i, f in enumerate(files):
                t = time.perf_counter()
                h = sides[s](f)
                best[s][i] = min(best[s][i], time.perf_counter() - t)
                hists[(s, i)] = h
    rows = []
    for i, f in enumerate(files):
        with Image.open(f) as im:
            w, h = im.size
        l1 = float(np.abs(hists[("chromatica", i)].astype(np.float64) - hists[("original", i)]).sum())
        rows.append({"file": f, "kind": kind(f), "pixels": w * h,
                     "chromatica_s": best["chromatica"][i], "original_s": best["original"][i], "l1": l1})
    print("\n".join(report(rows, f"{len(files)} files under {a.images}; best of {a.rounds} rounds per file; "
                                 "one core, in one process")))
    if a.save:
        with open(a.save, "w") as fh:
            json.dump({"rounds": a.rounds, "files": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
