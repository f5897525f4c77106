#!/usr/bin/env python3
"""Chromatica vs faiss IndexIVFPQ, side by side, in one run on one data set.

Runs `chromatica bench` and bench/faiss_ivfpq.py with the same parameters and
thread count, one after the other, and prints a Markdown table with the
ratios. Needs: a release build of chromatica, and `pip install faiss-cpu
numpy`. Data: a directory from ../shared/tools/make_dataset.py.

    python3 bench/compare.py --data /tmp/chromatica-data/100k --threads 1
"""
import argparse, json, os, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# (key, label, higher is better?)
ROWS = [
    ("search_batch_qps", "search q/s, batched (k=100)", True),
    ("search_single_qps", "search q/s, one query per call (k=10)", True),
    ("recall_at_1", "recall@1", True),
    ("recall_at_10", "recall@10", True),
    ("recall_at_100", "recall@100", True),
    ("tie_recall_at_10", "recall@10, duplicates counted as ties", True),
    ("train_s", "train time (s)", False),
    ("coarse_objective", "coarse k-means MSE", False),
    ("pq_mse", "reconstruction MSE over base", False),
    ("add_s", "add time (s)", False),
    ("refine_qps", "two-stage q/s (200 candidates, exact L2 re-rank; faiss: IndexRefineFlat)", True),
    ("refine_recall_at_10", "two-stage recall@10", True),
    ("refine_tie_recall_at_10", "two-stage recall@10, duplicates counted as ties", True),
    ("open_ms", "open time (ms)", False),
    ("disk_bytes_per_vector", "bytes per vector on disk", False),
]


def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--nlist", type=int, default=100)
    ap.add_argument("--m", type=int, default=8)
    ap.add_argument("--nbits", type=int, default=8)
    ap.add_argument("--nprobe", type=int, default=10)
    ap.add_argument("--train-n", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "chromatica"))
    ap.add_argument("--save", help="also write both sides' raw JSON to this directory")
    a = ap.parse_args()
    common = ["--data", a.data, "--threads", str(a.threads), "--nlist", str(a.nlist), "--m", str(a.m),
              "--nbits", str(a.nbits), "--nprobe", str(a.nprobe), "--train-n", str(a.train_n),
              "--repeat", str(a.repeat), "--json"]
    ours = run([a.bin, "bench", *common])
    theirs = run([sys.executable, os.path.join(HERE, "faiss_ivfpq.py"), *common])
    if a.save:
        os.makedirs(a.save, exist_ok=True)
        for name, res in (("chromatica", ours), ("faiss", theirs)):
            with open(os.path.join(a.save, name + ".json"), "w") as f:
                json.dump(res, f, indent=1)
    print(f"data {a.data}: n {ours['n']}, queries {ours['nq']}, d {ours['d']}; nlist {a.nlist}, m {a.m}, "
          f"nbits {a.nbits}, nprobe {a.nprobe}, {a.train_n} training vectors, {a.threads} thread(s)\n")
    print("| measure | chromatica | faiss IndexIVFPQ | ratio |")
    print("|---|---:|---:|---:|")
    for key, label, higher in ROWS:
        o, f = ours.get(key), theirs.get(key)
        if o is None or f is None:
            continue
        # The ratio always reads "how many times better chromatica is".
        ratio = (o / f if higher else f / o) if o and f else float("nan")
        fmt = (lambda v: f"{v:.4f}") if "recall" in key or "mse" in key or "objective" in key else (lambda v: f"{v:,.2f}")
        print(f"| {label} | {fmt(o)} | {fmt(f)} | {ratio:.2f}× |")
    print("\nChromatica only (faiss has no counterpart):\n")
    print("| measure | value |")
    print("|---|---:|")
    extra = [
        ("emd_qps", "two-stage q/s, Sinkhorn EMD re-rank (first %s queries)" % ours.get("emd_queries")),
        ("emd_recall_at_10", "two-stage recall@10, EMD re-rank (vs L2 ground truth)"),
        ("refine_bytes_per_vector", "refine store bytes per vector on disk"),
        ("resident_bytes_per_vector", "resident heap bytes per vector (codes, ids, refine are mapped)"),
        ("appends", "appends of 100 vectors (automatic merges)"),
        ("segments_after_appends", "segments after those appends"),
        ("appended_over_compacted", "search time after appends / fully compacted"),
    ]
    for key, label in extra:
        if key in ours:
            v = ours[key]
            print(f"| {label} | {v:,.4f} |" if isinstance(v, float) else f"| {label} | {v} |")


if __name__ == "__main__":
    main()
