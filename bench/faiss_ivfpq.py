#!/usr/bin/env python3
"""faiss side of the Chromatica side-by-side IVF-PQ benchmark.

Usage:
    python3 bench/faiss_ivfpq.py --data DIR [--nlist 100] [--m 8] [--nbits 8]
        [--nprobe 10] [--train-n 20000] [--threads 1] [--k 100]
        [--refine-candidates 200] [--json]

DIR must hold base.fvecs, query.fvecs and gt.ivecs (as written by
/work/shared/tools/make_dataset.py; gt rows are the exact top-100 by L2).

Conventions shared with the Rust side:
  * Training vectors are the FIRST `--train-n` rows of base.fvecs (no
    sampling), clamped to the number of base vectors.
  * Metric is squared L2; index is IndexIVFPQ(IndexFlatL2(d), d, nlist, m, nbits).
  * recall@R (R = 1, 10, 100) is the standard set definition for all three:
        |returned top-R  ∩  true top-R| / R,  averaged over queries.
    For R = 1 this is the fraction of queries whose first result is the true
    nearest neighbour.  recall@R needs R <= k for the batched search and
    R <= gt width; values that cannot be computed are reported as null.
  * Timings use time.perf_counter() around the faiss call(s) only.
"""
import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np
import faiss


# ---------------------------------------------------------------- readers
def _read_vecs(path, dtype):
    raw = np.fromfile(path, dtype=np.int32)
    if raw.size == 0:
        raise ValueError(f"{path}: empty file")
    d = int(raw[0])
    if d <= 0 or raw.size % (d + 1) != 0:
        raise ValueError(f"{path}: size {raw.size * 4} bytes is not a whole number of rows of dim {d}")
    rows = raw.reshape(-1, d + 1)
    if not np.all(rows[:, 0] == d):
        raise ValueError(f"{path}: rows with inconsistent dimension")
    return np.ascontiguousarray(rows[:, 1:].view(dtype))


def read_fvecs(path):
    """Each row: int32 dim, then dim float32 values."""
    return _read_vecs(path, np.float32)


def read_ivecs(path):
    """Each row: int32 dim, then dim int32 values."""
    return _read_vecs(path, np.int32)


# ---------------------------------------------------------------- metrics
def recall_at(I, gt, R):
    """Mean over queries of |I[:, :R] ∩ gt[:, :R]| / R (set intersection)."""
    if R > I.shape[1] or R > gt.shape[1]:
        return None
    tot = 0
    for row, g in zip(I[:, :R], gt[:, :R]):
        tot += np.intersect1d(row, g, assume_unique=False).size
    return tot / (R * I.shape[0])


def tie_aware_recall_at(I, gt, R, base, query, tol=1e-6):
    """Extra, not part of the shared contract: a returned top-R id counts as
    correct if its exact squared L2 distance is <= the true R-th distance
    (+tol).  The dataset has many exactly duplicated vectors (flat-colour
    crops), so for some queries the true top-R set is an arbitrary pick among
    ties; this variant is insensitive to which tie members are returned.
    tol=1e-6 is about float32 resolution for these unit-norm vectors (faiss
    computes ||x||^2 + ||q||^2 - 2<x,q> in float32, so distances below ~1e-6
    are indistinguishable from 0)."""
    if R > I.shape[1] or R > gt.shape[1]:
        return None
    ok = 0
    for s in range(0, I.shape[0], 100):                             # bound memory
        q = query[s:s + 100].astype(np.float64)
        ids = I[s:s + 100, :R]
        valid = ids >= 0
        rb = base[np.where(valid, ids, 0)].astype(np.float64)      # (b, R, d)
        dret = ((rb - q[:, None, :]) ** 2).sum(-1)
        gR = base[gt[s:s + 100, R - 1]].astype(np.float64)
        dthr = ((gR - q) ** 2).sum(-1)
        ok += int((valid & (dret <= dthr[:, None] + tol)).sum())
    return ok / (R * I.shape[0])


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


# ---------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--nlist", type=int, default=100)
    ap.add_argument("--m", type=int, default=8)
    ap.add_argument("--nbits", type=int, default=8)
    ap.add_argument("--nprobe", type=int, default=10)
    ap.add_argument("--train-n", type=int, default=20000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--refine-candidates", type=int, default=200)
    ap.add_argument("--single-k", type=int, default=10,
                    help="k for the one-query-per-call timing (default 10)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="search timings are the best of this many runs (default 3)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    faiss.omp_set_num_threads(a.threads)

    base = read_fvecs(os.path.join(a.data, "base.fvecs"))
    query = read_fvecs(os.path.join(a.data, "query.fvecs"))
    gt = read_ivecs(os.path.join(a.data, "gt.ivecs"))
    n, d = base.shape
    nq = query.shape[0]
    if query.shape[1] != d:
        sys.exit(f"dimension mismatch: base {d}, query {query.shape[1]}")
    if gt.shape[0] != nq:
        sys.exit(f"gt has {gt.shape[0]} rows, query has {nq}")
    if d % a.m != 0:
        sys.exit(f"d={d} is not divisible by m={a.m}")

    train_n = min(a.train_n, n)
    train = base[:train_n]  # FIRST train_n rows of base (same rule as Rust side)

    # ---- build
    quantizer = faiss.IndexFlatL2(d)
    index = faiss.IndexIVFPQ(quantizer, d, a.nlist, a.m, a.nbits)
    _, train_s = timed(index.train, train)
    _, add_s = timed(index.add, base)
    index.nprobe = a.nprobe

    # ---- batched search, all queries in one call
    batch_s = float("inf")
    for _ in range(a.repeat):
        (D, I), s_ = timed(index.search, query, a.k)
        batch_s = min(batch_s, s_)
    search_batch_qps = nq / batch_s

    # ---- one query per call
    sk = a.single_k
    single_s = float("inf")
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        for i in range(nq):
            index.search(query[i:i + 1], sk)
        single_s = min(single_s, time.perf_counter() - t0)
    search_single_qps = nq / single_s

    r1 = recall_at(I, gt, 1)
    r10 = recall_at(I, gt, 10)
    r100 = recall_at(I, gt, 100)
    tie = {R: tie_aware_recall_at(I, gt, R, base, query) for R in (1, 10, 100)}

    # ---- coarse k-means objective: mean squared distance of the training
    # vectors to their nearest coarse centroid
    cD, _ = quantizer.search(train, 1)
    coarse_objective = float(cD[:, 0].astype(np.float64).mean())

    # ---- disk size and open time (IVFPQ index only, no refine store).
    # Done before make_direct_map() so the saved file holds no direct map.
    fd, path = tempfile.mkstemp(suffix=".faissindex")
    os.close(fd)
    try:
        faiss.write_index(index, path)
        disk_bytes = os.path.getsize(path)
        # The file was just written, so this is a warm (page-cache) open.
        loaded, open_s = timed(faiss.read_index, path)
        del loaded
    finally:
        os.unlink(path)

    # ---- PQ quantization error: mean over base vectors of ||x - rec(x)||^2,
    # where rec(x) = coarse centroid + decoded PQ residual (what IVFPQ stores)
    index.make_direct_map()
    se = 0.0
    chunk = 10000
    for s in range(0, n, chunk):
        rec = index.reconstruct_n(s, min(chunk, n - s))
        diff = base[s:s + chunk].astype(np.float64) - rec.astype(np.float64)
        se += float((diff * diff).sum())
    pq_mse = se / n

    # ---- two-stage: IVFPQ candidates re-ranked with exact distances.
    # k_factor = refine_candidates / 10 at k=10 -> refine_candidates candidates.
    # IndexRefineFlat(index) refuses a non-empty base index, so use the
    # (base_index, xb) constructor, which copies the raw base vectors into
    # the flat refine store for the already-filled IVFPQ index.
    refine = faiss.IndexRefineFlat(index, faiss.swig_ptr(base))
    refine.k_factor = a.refine_candidates / 10.0
    faiss.omp_set_num_threads(1)  # refine is measured one thread, batched
    (_, RI), refine_s = timed(refine.search, query, 10)
    faiss.omp_set_num_threads(a.threads)
    refine_recall_at_10 = recall_at(RI, gt, 10)
    refine_tie10 = tie_aware_recall_at(RI, gt, 10, base, query)
    refine_qps = nq / refine_s

    res = {
        "data": os.path.abspath(a.data),
        "n": n, "nq": nq, "d": d,
        "nlist": a.nlist, "m": a.m, "nbits": a.nbits, "nprobe": a.nprobe,
        "train_n": train_n, "threads": a.threads, "k": a.k,
        "single_k": sk, "refine_candidates": a.refine_candidates,
        "faiss_version": faiss.__version__,
        "train_s": train_s,
        "add_s": add_s,
        "search_batch_qps": search_batch_qps,
        "search_single_qps": search_single_qps,
        "recall_at_1": r1,
        "recall_at_10": r10,
        "recall_at_100": r100,
        "coarse_objective": coarse_objective,
        "pq_mse": pq_mse,
        "refine_recall_at_10": refine_recall_at_10,
        "refine_qps": refine_qps,
        "open_ms": open_s * 1000.0,
        # extras (not in the shared contract): tie-aware recall, see
        # tie_aware_recall_at()
        "tie_recall_at_1": tie[1],
        "tie_recall_at_10": tie[10],
        "tie_recall_at_100": tie[100],
        "refine_tie_recall_at_10": refine_tie10,
        "disk_bytes": disk_bytes,
        "disk_bytes_per_vector": disk_bytes / n,
    }

    if a.json:
        print(json.dumps(res))
        return

    def f(v, fmt):
        return "n/a" if v is None else format(v, fmt)

    rows = [
        ("dataset", f"{res['data']}  (n={n}, nq={nq}, d={d})"),
        ("params", f"nlist={a.nlist} m={a.m} nbits={a.nbits} nprobe={a.nprobe} "
                   f"train_n={train_n} threads={a.threads} k={a.k} "
                   f"refine_candidates={a.refine_candidates}"),
        ("faiss", faiss.__version__),
        ("train_s", f(train_s, ".3f")),
        ("add_s", f(add_s, ".3f")),
        (f"search_batch_qps (k={a.k})", f(search_batch_qps, ".1f")),
        (f"search_single_qps (k={sk})", f(search_single_qps, ".1f")),
        ("recall_at_1", f(r1, ".4f")),
        ("recall_at_10", f(r10, ".4f")),
        ("recall_at_100", f(r100, ".4f")),
        ("coarse_objective", f(coarse_objective, ".6f")),
        ("pq_mse", f(pq_mse, ".6f")),
        ("refine_recall_at_10", f(refine_recall_at_10, ".4f")),
        ("refine_qps (1 thread)", f(refine_qps, ".1f")),
        ("open_ms (warm cache)", f(res["open_ms"], ".3f")),
        ("disk_bytes", str(disk_bytes)),
        ("disk_bytes_per_vector", f(res["disk_bytes_per_vector"], ".2f")),
        ("extra: tie_recall_at_1/10/100", " / ".join(f(tie[R], ".4f") for R in (1, 10, 100))),
        ("extra: refine_tie_recall_at_10", f(refine_tie10, ".4f")),
    ]
    w = max(len(r[0]) for r in rows)
    for k_, v in rows:
        print(f"{k_:<{w}}  {v}")


if __name__ == "__main__":
    main()
