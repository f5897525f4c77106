#!/usr/bin/env python3
"""In-process benchmark: the `chromatica` Python package against faiss-cpu,
in the same process, on the same numpy arrays.

Usage:
    pip install ./python faiss-cpu numpy
    python3 crates/chromatica-bench/python/inprocess.py --data DIR [--nlist 100] [--m 8]
        [--nbits 8] [--nprobe 10] [--train-n 20000] [--k 100] [--single-k 10]
        [--candidates 200] [--repeat 5] [--json FILE]

DIR holds base.fvecs, query.fvecs and gt.ivecs (../shared/tools/make_dataset.py).

Method (the conventions of faiss_ivfpq.py and `chromatica-bench bench`):
  * One Python process loads the arrays once; both engines get the very
    same C-contiguous float32 arrays (chromatica reads them in place).
  * Both train on the first --train-n base rows and add all of them with one
    thread (faiss.omp_set_num_threads(1), chromatica.set_num_threads(1));
    the time is perf_counter() around the call. Chromatica builds a plain
    index (codes and ids, like IndexIVFPQ) and, from the same seed, one with
    the refine store for the two-stage search; faiss's two-stage is
    IndexRefineFlat over its IndexIVFPQ with k_factor = candidates / k.
  * Searches are passes over all queries: batched (k = --k), one query per
    call (k = --single-k) and two-stage (batched, k = --k), each at one
    thread and at all cores (faiss: OpenMP threads; chromatica:
    set_num_threads). One untimed pass of each warms up and gives the
    recall; then the two engines take turns at --repeat timed passes, so a
    busy moment of the machine hits both; the fastest pass counts.
  * recall@R = |returned top-R ∩ true top-R| / R averaged over queries.
  * RSS: VmRSS of this process before and after each engine builds its
    index (growth, MiB); the arrays are loaded before either.
"""

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from faiss_ivfpq import add_ivf_args, read_fvecs, read_ivecs, read_rss, recall_at  # noqa: E402


def mib(b):
    return b / (1 << 20)


def best(times):
    return min(times)


def fmt(v):
    if isinstance(v, float):
        return f"{v:,.4f}" if v < 10 else f"{v:,.2f}" if v < 1000 else f"{v:,.0f}"
    return f"{v:,}"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    add_ivf_args(p)
    p.add_argument("--k", type=int, default=100)
    p.add_argument("--single-k", type=int, default=10)
    p.add_argument("--candidates", type=int, default=200)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--json", help="also write every figure to this file")
    a = p.parse_args(argv)

    import chromatica
    import faiss

    base = read_fvecs(os.path.join(a.data, "base.fvecs"))
    query = read_fvecs(os.path.join(a.data, "query.fvecs"))
    gt = read_ivecs(os.path.join(a.data, "gt.ivecs")).astype(np.int64)
    n, d = base.shape
    xt = base[: min(a.train_n, n)]
    cores = os.cpu_count() or 1
    r = {"n": n, "queries": len(query), "d": d, "cores": cores, "faiss": faiss.__version__,
         "chromatica": chromatica.__version__}

    tmp = tempfile.TemporaryDirectory(prefix="inprocess-")
    faiss.omp_set_num_threads(1)
    chromatica.set_num_threads(1)

    # ---- builds, one thread each
    rss0 = read_rss()[0]
    ours = chromatica.Index.create(os.path.join(tmp.name, "plain"), dim=d, nlist=a.nlist, m=a.m, nbits=a.nbits,
                                   nprobe=a.nprobe)
    t = time.perf_counter()
    ours.train(xt)
    r["c_train_s"] = time.perf_counter() - t
    t = time.perf_counter()
    ours.add(base)
    r["c_add_s"] = time.perf_counter() - t
    ours_refine = chromatica.Index.create(os.path.join(tmp.name, "refine"), dim=d, nlist=a.nlist, m=a.m,
                                          nbits=a.nbits, nprobe=a.nprobe, refine=True)
    ours_refine.train(xt)
    t = time.perf_counter()
    ours_refine.add(base)
    r["c_add_refine_s"] = time.perf_counter() - t
    rss1 = read_rss()[0]
    r["c_rss_mib"] = mib(rss1 - rss0)

    fidx = faiss.IndexIVFPQ(faiss.IndexFlatL2(d), d, a.nlist, a.m, a.nbits)
    t = time.perf_counter()
    fidx.train(xt)
    r["f_train_s"] = time.perf_counter() - t
    t = time.perf_counter()
    fidx.add(base)
    r["f_add_s"] = time.perf_counter() - t
    fidx.nprobe = a.nprobe
    frefine = faiss.IndexRefineFlat(fidx, faiss.swig_ptr(base))
    frefine.k_factor = a.candidates / a.k
    rss2 = read_rss()[0]
    r["f_rss_mib"] = mib(rss2 - rss1)

    # ---- the passes
    def c_batch():
        return ours.search(query, a.k)

    def f_batch():
        return fidx.search(query, a.k)

    def c_single():
        out = np.empty((len(query), a.single_k), np.int64)
        for i in range(len(query)):
            out[i] = ours.search(query[i], a.single_k)[1][0]
        return None, out

    def f_single():
        out = np.empty((len(query), a.single_k), np.int64)
        for i in range(len(query)):
            out[i] = fidx.search(query[i : i + 1], a.single_k)[1][0]
        return None, out

    def c_refine():
        return ours_refine.search(query, a.k, candidates=a.candidates)

    def f_refine():
        return frefine.search(query, a.k)

    kinds = {"batch": (c_batch, f_batch), "single": (c_single, f_single), "refine": (c_refine, f_refine)}
    for kind, (cf, ff) in kinds.items():
        _, ci = cf()
        _, fi = ff()
        if kind == "batch":
            for R in (1, 10, 100):
                r[f"c_recall{R}"] = recall_at(ci, gt, R)
                r[f"f_recall{R}"] = recall_at(fi, gt, R)
        else:
            r[f"c_{kind}_recall10"] = recall_at(ci, gt, 10)
            r[f"f_{kind}_recall10"] = recall_at(fi, gt, 10)

    thread_counts = [1] if cores == 1 else [1, cores]
    for threads in thread_counts:
        faiss.omp_set_num_threads(threads)
        chromatica.set_num_threads(threads)
        for kind, (cf, ff) in kinds.items():
            if kind == "single" and threads > 1:
                continue  # one query per call uses one thread on both sides
            ct, ft = [], []
            for rep in range(a.repeat):
                order = [(cf, ct), (ff, ft)] if rep % 2 == 0 else [(ff, ft), (cf, ct)]
                for fn, acc in order:
                    t = time.perf_counter()
                    fn()
                    acc.append(time.perf_counter() - t)
            r[f"c_{kind}_qps_t{threads}"] = len(query) / best(ct)
            r[f"f_{kind}_qps_t{threads}"] = len(query) / best(ft)

    ours.close()
    ours_refine.close()
    tmp.cleanup()

    if a.json:
        with open(a.json, "w") as f:
            json.dump(r, f, indent=1)
    print(table(r, a, thread_counts))
    return r


def table(r, a, thread_counts):
    rows = []

    def row(name, c, f, better="higher", target="", ok=None):
        ratio = (c / f if better == "higher" else f / c) if c and f else float("nan")
        res = "" if ok is None else ("PASS" if ok else "FAIL")
        rows.append(f"| {name} | {fmt(c)} | {fmt(f)} | {ratio:.2f}× | {target} | {res} |")
        return ratio

    all_t = thread_counts[-1]
    eq = r["c_recall10"] >= r["f_recall10"] - 0.01
    ratio = r["c_batch_qps_t1"] / r["f_batch_qps_t1"]
    row(f"search q/s, batched (k={a.k}), 1 thread", r["c_batch_qps_t1"], r["f_batch_qps_t1"],
        target="≥ 2× at recall@10 ≥ faiss − 0.01", ok=ratio >= 2 and eq)
    ratio = r["c_single_qps_t1"] / r["f_single_qps_t1"]
    row(f"search q/s, one query per call (k={a.single_k}), 1 thread", r["c_single_qps_t1"], r["f_single_qps_t1"],
        target="≥ 2× at recall@10 ≥ faiss − 0.01",
        ok=ratio >= 2 and r["c_single_recall10"] >= r["f_single_recall10"] - 0.01)
    if all_t > 1:
        row(f"search q/s, batched (k={a.k}), {all_t} threads", r[f"c_batch_qps_t{all_t}"], r[f"f_batch_qps_t{all_t}"])
    for R in (1, 10, 100):
        row(f"recall@{R}", r[f"c_recall{R}"], r[f"f_recall{R}"])
    row(f"recall@10, one query per call (k={a.single_k})", r["c_single_recall10"], r["f_single_recall10"])
    eq2 = r["c_refine_recall10"] >= r["f_refine_recall10"] - 0.01
    ratio = r["c_refine_qps_t1"] / r["f_refine_qps_t1"]
    name = (f"two-stage q/s ({a.candidates} candidates, exact L2 re-rank, k={a.k}; faiss: IndexRefineFlat, "
            f"k_factor {a.candidates / a.k:g})")
    row(f"{name}, 1 thread", r["c_refine_qps_t1"], r["f_refine_qps_t1"],
        target="≥ 1.5× at recall@10 ≥ faiss − 0.01", ok=ratio >= 1.5 and eq2)
    if all_t > 1:
        row(f"{name}, {all_t} threads", r[f"c_refine_qps_t{all_t}"], r[f"f_refine_qps_t{all_t}"])
    row("two-stage recall@10", r["c_refine_recall10"], r["f_refine_recall10"])
    row("train time (s), 1 thread", r["c_train_s"], r["f_train_s"], better="lower")
    row("add time (s), 1 thread", r["c_add_s"], r["f_add_s"], better="lower")
    row("RSS growth of the build (MiB; faiss: IVFPQ + RefineFlat's copy of the base; chromatica: both indexes)",
        r["c_rss_mib"], r["f_rss_mib"], better="lower")
    head = (f"data: n {r['n']:,}, queries {r['queries']:,}, d {r['d']}; nlist {a.nlist}, m {a.m}, nbits {a.nbits}, "
            f"nprobe {a.nprobe}; {a.train_n:,} training vectors; faiss {r['faiss']}, chromatica {r['chromatica']}; "
            f"{r['cores']} cores; best of {a.repeat} passes, taking turns\n\n"
            "| measure | chromatica | faiss | ratio (>1: chromatica better) | target | result |\n"
            "|---|---:|---:|---:|---|---|\n")
    extra = f"\nChromatica only: add with the refine store {r['c_add_refine_s']:.2f} s (1 thread).\n"
    return head + "\n".join(rows) + "\n" + extra


if __name__ == "__main__":
    main()
