#!/usr/bin/env python3
"""Colour-relevance ground truth for `chromatica-bench color`: queries and
their exact Earth Mover's Distance top 10 over a data set of
`shared/tools/make_dataset.py` (base.fvecs holds Hellinger vectors; the
colour distribution of a row is its square).

Queries, four kinds:
  palette       the k-means palette (2-6 colours, in CIE Lab, shares as
                weights) of a random crop of a real image, drawn with a seed
                of its own (held out: not one of the base rows), as hex:weight
  random        1-3 random sRGB colours with random weights
  image-heldout a held-out histogram (a row of query.fvecs)
  image-base    a base histogram (its own row must come first)
A colour is the 8-bit sRGB colour a user would type; its Lab point is
scikit-image's rgb2lab of it (what the engine uses).

Distance: exact EMD with ΔE76 (Euclidean in Lab) ground distance, from the
query's point masses (or histogram bins) to the histogram's masses at the
soft-assignment grid nodes, by POT's network simplex `ot.emd2` -- an
implementation independent of ours.

Cost at 100k: exact lower bounds prune. For equal total mass and a
Euclidean ground distance, EMD >= |mean_a - mean_b| (the centroid bound),
and EMD >= sum_j b_j min_i c_ij (every unit of the histogram travels at
least to the nearest query mass: the LP without the query-side marginal).
Rows are solved exactly in increasing order of the larger bound, and the
search stops once the bound exceeds the current 10th-best exact EMD, so the
top 10 is exact without solving all 100k.

    pip install pot numpy scikit-image pillow
    python3 color_truth.py --data DIR --out DIR/color_queries.json
"""
import argparse, heapq, importlib.util, json, os, sys, time
import numpy as np
import ot
from skimage.color import rgb2lab, lab2rgb

L, A, B = 8, 12, 12
RANGES = np.array([[0.0, 100.0], [-86.0, 98.0], [-108.0, 95.0]])
K = 10


def bin_centres():
    step = (RANGES[:, 1] - RANGES[:, 0]) / np.array([L, A, B])
    g = np.stack(np.meshgrid(np.arange(L), np.arange(A), np.arange(B), indexing="ij"), -1).reshape(-1, 3)
    return RANGES[:, 0] + g * step


def read_fvecs(path):
    a = np.fromfile(path, dtype=np.float32)
    d = a[:1].view(np.int32)[0]
    return a.reshape(-1, d + 1)[:, 1:]


def srgb_lab(rgb8):
    return rgb2lab(np.asarray(rgb8, dtype=np.float64).reshape(-1, 1, 3) / 255.0).reshape(-1, 3)


def to_hex(rgb8):
    return "".join(f"{int(c):02x}" for c in rgb8)


def kmeans(x, k, rng, iters=20):
    c = x[rng.choice(len(x), k, replace=False)]
    for _ in range(iters):
        lab = ((x[:, None, :] - c[None]) ** 2).sum(-1).argmin(1)
        for j in range(k):
            if (lab == j).any():
                c[j] = x[lab == j].mean(0)
    lab = ((x[:, None, :] - c[None]) ** 2).sum(-1).argmin(1)
    return c, np.bincount(lab, minlength=k) / len(x)


def colour_query(rgb8s, weights):
    """hex:weight entries (weights rounded to 4 digits), and the Lab points
    and normalised weights the truth uses (those of the rounded values)."""
    w = np.round(np.asarray(weights, dtype=np.float64), 4)
    keep = w > 0
    rgb8s, w = np.asarray(rgb8s)[keep], w[keep]
    return ([[to_hex(c), float(x)] for c, x in zip(rgb8s, w)], srgb_lab(rgb8s), w / w.sum())


def palette_queries(n, imgdir, tools, rng):
    spec = importlib.util.spec_from_file_location("make_dataset", tools)
    md = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(md)
    from PIL import Image
    files = md.fetch_images(imgdir)
    out = []
    while len(out) < n:
        im = Image.open(files[rng.integers(len(files))]).convert("RGB")
        im.thumbnail((256, 256))
        px = np.asarray(im, dtype=np.float64) / 255.0
        h, w, _ = px.shape
        ch, cw = int(rng.integers(min(24, h), h + 1)), int(rng.integers(min(24, w), w + 1))
        y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        lab = rgb2lab(px[y:y + ch, x:x + cw]).reshape(-1, 3)
        if len(lab) > 2000:
            lab = lab[rng.choice(len(lab), 2000, replace=False)]
        k = int(rng.integers(2, 7))
        centres, shares = kmeans(lab, k, rng)
        rgb8 = np.clip(np.round(lab2rgb(centres.reshape(-1, 1, 3)).reshape(-1, 3) * 255), 0, 255)
        out.append(("palette", *colour_query(rgb8, shares)))
    return out


def random_queries(n, rng):
    out = []
    for _ in range(n):
        k = int(rng.integers(1, 4))
        out.append(("random", *colour_query(rng.integers(0, 256, size=(k, 3)), rng.dirichlet(np.ones(k)))))
    return out


def exact_top(points, weights, hists, means, centres):
    """Exact EMD top K of points/weights against every row of hists (L1),
    pruned by the two lower bounds. Returns ids, distances, rows solved."""
    cost = np.sqrt(((points[:, None, :] - centres[None]) ** 2).sum(-1))  # m x 1152
    nearest = hists @ cost.min(0)
    centroid = np.sqrt(((means - weights @ points) ** 2).sum(1))
    bound = np.maximum(nearest, centroid)
    order = np.argsort(bound, kind="stable")
    best = []  # max-heap of (-emd, -id)
    solved = 0
    for r in order:
        if len(best) == K and bound[r] > -best[0][0] + 1e-9:
            break
        nz = np.nonzero(hists[r])[0]
        b = hists[r, nz].astype(np.float64)
        d = ot.emd2(weights, b / b.sum(), cost[:, nz], numItermax=10_000_000)
        solved += 1
        item = (-d, -int(r))
        if len(best) < K:
            heapq.heappush(best, item)
        elif item > best[0]:
            heapq.heapreplace(best, item)
    top = sorted((-d, -i) for d, i in best)
    return [i for _, i in top], [d for d, _ in top], solved


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="make_dataset.py output (base.fvecs, query.fvecs)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--colour", type=int, default=60, help="colour queries (half palettes, half random)")
    ap.add_argument("--image", type=int, default=30, help="image queries (half held out, half base)")
    ap.add_argument("--seed", type=int, default=2011)
    ap.add_argument("--imgdir", default="/tmp/chromatica-dev-imgs")
    ap.add_argument("--tools", default=os.path.join(here, "../../../../shared/tools/make_dataset.py"))
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    centres = bin_centres()
    base = read_fvecs(os.path.join(a.data, "base.fvecs"))
    held = read_fvecs(os.path.join(a.data, "query.fvecs"))
    hists = base.astype(np.float32) ** 2
    hists /= hists.sum(1, keepdims=True)
    means = (hists @ centres).astype(np.float64)
    queries = palette_queries(a.colour // 2, a.imgdir, a.tools, rng) + random_queries(a.colour - a.colour // 2, rng)
    images = []
    for i in range(a.image):
        kind = "image-heldout" if i < a.image // 2 else "image-base"
        row = int(rng.integers(len(held) if kind == "image-heldout" else len(base)))
        images.append((kind, row))
    out, t0 = [], time.time()
    for kind, colours, points, weights in queries:
        ids, dists, solved = exact_top(points, weights, hists, means, centres)
        out.append({"kind": kind, "colors": colours, "truth_ids": ids, "truth_emd": dists, "solved": solved})
        print(f"{len(out)}/{len(queries) + len(images)} {kind} solved {solved} in {time.time() - t0:.0f}s",
              file=sys.stderr)
    for kind, row in images:
        v = (held if kind == "image-heldout" else base)[row]
        h = v.astype(np.float64) ** 2
        nz = np.nonzero(h)[0]
        ids, dists, solved = exact_top(centres[nz], h[nz] / h[nz].sum(), hists, means, centres)
        q = {"kind": kind, "hellinger": [[int(j), float(v[j])] for j in nz], "truth_ids": ids, "truth_emd": dists,
             "solved": solved}
        if kind == "image-base":
            q["base_row"] = row
        out.append(q)
        print(f"{len(out)}/{len(queries) + len(images)} {kind} solved {solved} in {time.time() - t0:.0f}s",
              file=sys.stderr)
    with open(a.out, "w") as f:
        json.dump({"k": K, "base": len(base), "seed": a.seed, "queries": out}, f)
    print(f"wrote {len(out)} queries to {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
