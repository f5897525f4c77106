#!/usr/bin/env python3
"""Draws how bench-scale's figures grow with n, as an SVG (no plotting
library: the figure is three small line charts on a log-n axis).

    chromatica-bench bench-scale --n 100000 --refine --json > s100k.json   # and 1M, 10M
    python3 crates/chromatica-bench/python/scale_plot.py s100k.json s1m.json s10m.json --out docs/scale.svg

Each JSON file is one `bench-scale --refine --json` run; the panels are
recall@10, q/s one query per call on 1 thread, each for two-stage (the
refine index's default search) and stage 1 alone, and bytes per vector on
disk: one point per run, joined in order of n.
"""
import argparse
import json
import math

SERIES = (("two-stage", "#1f5fa8"), ("stage 1", "#c8553d"))
# Per panel: title, number format, and per series (as SERIES) the JSON key.
PANELS = (
    ("recall@10", lambda v: f"{v:.2f}", ("recall_at_10", "stage1_recall_at_10")),
    ("q/s, one query per call, 1 thread", lambda v: f"{v:,.0f}", ("search_single_qps_t1", "stage1_search_single_qps_t1")),
    ("bytes per vector on disk", lambda v: f"{v:.0f}", ("disk_bytes_per_vector", None)),
)
W, H, PAD = 300, 200, 40


def scale(v, lo, hi, a, b):
    """Maps v in [lo, hi] linearly onto [a, b] (the middle when lo == hi)."""
    if hi == lo:
        return (a + b) / 2
    return a + (v - lo) / (hi - lo) * (b - a)


def panel(runs, title, fmt, keys, x0):
    out = [f'<text x="{x0 + W / 2}" y="16" text-anchor="middle" font-size="12">{title}</text>',
           f'<rect x="{x0 + PAD}" y="{PAD - 10}" width="{W - 2 * PAD}" height="{H - 2 * PAD + 10}" '
           'fill="none" stroke="#999"/>']
    series = [([(r["n"], r[k]) for r in runs if r.get(k) is not None], colour)
              for k, (_, colour) in zip(keys, SERIES) if k]
    every = [p for pts, _ in series for p in pts]
    if not every:
        return out
    lx = [math.log10(n) for n, _ in every]
    ylo, yhi = min(0.0, min(v for _, v in every)), max(v for _, v in every) * 1.1 or 1.0
    top = {}  # per n, the highest value: its label goes above the point, the others' below
    for n, v in every:
        top[n] = max(top.get(n, v), v)
    for pts, colour in series:
        xy = [(scale(math.log10(n), min(lx), max(lx), x0 + PAD + 10, x0 + W - PAD - 10),
               scale(v, ylo, yhi, H - PAD, PAD)) for n, v in pts]
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="' +
                   " ".join(f"{x:.1f},{y:.1f}" for x, y in xy) + '"/>')
        for (n, v), (x, y) in zip(pts, xy):
            ty = y - 7 if v == top[n] else y + 14
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>')
            out.append(f'<text x="{x:.1f}" y="{ty:.1f}" text-anchor="middle" font-size="10">{fmt(v)}</text>')
    for n in sorted({n for n, _ in every}):
        x = scale(math.log10(n), min(lx), max(lx), x0 + PAD + 10, x0 + W - PAD - 10)
        label = f"{n / 1e6:g}M" if n >= 1e6 else f"{n / 1e3:g}k"
        out.append(f'<text x="{x:.1f}" y="{H - PAD + 14}" text-anchor="middle" font-size="10">{label}</text>')
    return out


def svg(runs, caption):
    runs = sorted(runs, key=lambda r: r["n"])
    body = []
    for i, (title, fmt, keys) in enumerate(PANELS):
        body += panel(runs, title, fmt, keys, i * W)
    body += [f'<text x="{10 + 120 * i}" y="{H + 12}" font-size="11" fill="{colour}">■ {name}</text>'
             for i, (name, colour) in enumerate(SERIES)]
    body.append(f'<text x="{len(PANELS) * W / 2 + 60}" y="{H + 12}" text-anchor="middle" font-size="11">{caption}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{len(PANELS) * W}" height="{H + 20}" '
            'font-family="sans-serif">\n<rect width="100%" height="100%" fill="white"/>\n' + "\n".join(body) + "\n</svg>\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", help="bench-scale --json outputs")
    ap.add_argument("--out", required=True)
    ap.add_argument("--caption", default="n vectors (log scale); chromatica-bench bench-scale")
    a = ap.parse_args()
    runs = [json.load(open(p)) for p in a.runs]
    with open(a.out, "w") as fh:
        fh.write(svg(runs, a.caption))


if __name__ == "__main__":
    main()
