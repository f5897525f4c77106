#!/usr/bin/env python3
"""chromatica.ray on this machine: distributed build and sharded search
against one process, on the same arrays, on a local directory or on moto's
S3 server (started here, on loopback).

Usage:
    pip install ./python "ray[data]" numpy 'moto[server]'
    python3 crates/chromatica-bench/python/ray_bench.py --data DIR [--n 100000]
        [--s3] [--workers 1,2] [--shards 1,2,4] [--queries 1000] [--images DIR] [--json FILE]

DIR holds base.fvecs and query.fvecs (../shared/tools/make_dataset.py).

Method:
  * One process loads the arrays. The single-process build is
    Index.create + train (the first --train-n rows) + add, one thread
    (set_num_threads(1)), each timed with perf_counter().
  * The Ray build: the index is created and trained on the same rows as
    the single-process one (so the quantizers are equal), then
    chromatica.ray.build encodes with --batch-rows rows per task, at most
    `workers` tasks at once, and commits; Ray runs on this machine's 2 CPUs.
    Per task: rows / seconds inside the task (open, encode, write): the
    per-worker throughput a cluster multiplies. The codes are checked equal
    to the single-process build's (every vector's PQ distance to 20 queries
    over all lists).
  * Bytes moved: what the workers wrote (staged segment bytes) and, on S3,
    what the driver downloaded to check the commit (its cache's growth).
  * With --images DIR (e.g. 1,000 photos from serve/make_images.py): the
    folder indexed by one process (ImageLibrary.index, one thread: decode,
    histogram, add), then built by chromatica.ray.build from the same paths
    (each task decodes its share): images/s overall and per task.
  * Search: --queries queries, one per call, k 10, the index's defaults
    (nprobe, 200 candidates, exact L2 re-rank): Index.search in this process
    against ShardedSearcher with `shards` actors; p50/p99 latency, and the
    results checked identical. The fan-out cost is sharded − single p50.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np


def fvecs(path, n=None):
    raw = np.fromfile(path, dtype=np.int32)
    d = raw[0]
    x = raw.reshape(-1, d + 1)[:, 1:].view(np.float32)
    return np.ascontiguousarray(x[:n] if n else x)


def dir_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def pct(v, q):
    return float(np.percentile(np.asarray(v) * 1000, q))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--train-n", type=int, default=20_000)
    ap.add_argument("--batch-rows", type=int, default=10_000)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--shards", default="1,2,4")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--s3", action="store_true", help="build on moto's S3 server instead of a directory")
    ap.add_argument("--images", help="a folder of photos: also time an image build against ImageLibrary.index")
    ap.add_argument("--json")
    args = ap.parse_args()

    xb = fvecs(os.path.join(args.data, "base.fvecs"), args.n)
    xq = fvecs(os.path.join(args.data, "query.fvecs"), args.queries)
    shape = dict(dim=xb.shape[1], nlist=100, m=8, nbits=8, nprobe=10, refine=True)
    tmp = tempfile.mkdtemp(prefix="ray-bench-")
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "python", "tests"))
    from conftest import aws_env, moto_server  # noqa: E402  (the tests' moto helper)

    import contextlib

    server = moto_server("bench") if args.s3 else contextlib.nullcontext(None)
    out = {"n": len(xb), "dim": xb.shape[1], "storage": "s3 (moto, loopback)" if args.s3 else "directory", "builds": [], "search": []}
    with server as endpoint:
        if endpoint:
            os.environ.update(aws_env(endpoint))
        import ray

        import chromatica
        import chromatica.ray as cray

        ray.init(
            num_cpus=2,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            logging_level="WARNING",
            runtime_env={"env_vars": aws_env(endpoint)} if endpoint else None,
        )
        ray.data.DataContext.get_current().enable_progress_bars = False
        chromatica.set_num_threads(1)
        t = time.perf_counter()
        single = chromatica.Index.create(os.path.join(tmp, "single"), **shape)
        single.train(xb[: args.train_n])
        t_train = time.perf_counter() - t
        t = time.perf_counter()
        single.add(xb)
        t_add = time.perf_counter() - t
        out["single"] = {"train_s": t_train, "add_s": t_add, "add_rows_per_s": len(xb) / t_add}
        print(f"single process: train {t_train:.2f} s, add {t_add:.2f} s ({len(xb) / t_add:,.0f} rows/s)", flush=True)
        probe = xq[:20]
        ref = single.search(probe, k=len(xb), nprobe=shape["nlist"], rerank="none")

        uri = None
        for w in [int(v) for v in args.workers.split(",")]:
            uri = f"s3://bench/ray-{w}" if args.s3 else os.path.join(tmp, f"ray-{w}")
            cache = os.path.join(tmp, f"driver-cache-{w}")
            os.environ["CHROMATICA_CACHE_DIR"] = cache
            # Train exactly as the single-process build did, then let build
            # encode and commit (build trains only an untrained index).
            with chromatica.Index.create(uri, **shape) as pre:
                pre.train(xb[: args.train_n])
            before = dir_bytes(cache) if os.path.exists(cache) else 0
            r = cray.build(uri, xb, batch_rows=args.batch_rows, workers=w)
            downloaded = (dir_bytes(cache) if os.path.exists(cache) else 0) - before
            with chromatica.Index.open(uri, read_only=True) as built:
                got = built.search(probe, k=len(xb), nprobe=shape["nlist"], rerank="none")
            same = bool((got[0] == ref[0]).all() and (got[1] == ref[1]).all())
            row = {
                "workers": w,
                "encode_s": r["seconds"]["encode"],
                "commit_s": r["seconds"]["commit"],
                "total_s": r["seconds"]["total"],
                "rows_per_s": len(xb) / r["seconds"]["encode"],
                "rows_per_s_per_task": r["rows_per_second_per_task"],
                "tasks": r["tasks"],
                "bytes_written": r["bytes_written"],
                "driver_downloaded": downloaded if args.s3 else None,
                "codes_equal_single": same,
            }
            out["builds"].append(row)
            print(json.dumps(row), flush=True)
        vector_uri = uri

        if args.images:
            # Photos: one process's ImageLibrary.index (one thread) against a
            # Ray build from the same paths (decode on the workers).
            paths = sorted(os.path.join(args.images, f) for f in os.listdir(args.images))
            t = time.perf_counter()
            with chromatica.ImageLibrary(os.path.join(tmp, "photos-single")) as lib:
                lib.index([args.images])
            single_s = time.perf_counter() - t
            out["images"] = {"n": len(paths), "single_s": single_s, "single_per_s": len(paths) / single_s, "ray": []}
            for w in [int(v) for v in args.workers.split(",")]:
                uri = f"s3://bench/photos-{w}" if args.s3 else os.path.join(tmp, f"photos-ray-{w}")
                r = cray.build(uri, paths, batch_rows=max(1, len(paths) // 8), workers=w)
                out["images"]["ray"].append(
                    {
                        "workers": w,
                        "total_s": r["seconds"]["total"],
                        "per_s": len(paths) / r["seconds"]["total"],
                        "per_s_per_task": r["rows_per_second_per_task"],
                        "failed": len(r["failed"]),
                    }
                )
            print(json.dumps(out["images"]), flush=True)

        # Sharded search on the last Ray-built vector index.
        os.environ["CHROMATICA_CACHE_DIR"] = os.path.join(tmp, "search-cache")
        uri = vector_uri
        with chromatica.Index.open(uri, read_only=True) as whole:
            whole.search(xq, 10)  # warm: pages in
            lat = []
            for q in xq:
                t = time.perf_counter()
                whole.search(q, 10)
                lat.append(time.perf_counter() - t)
            d_ref, i_ref = whole.search(xq, 10)
            out["search"].append({"shards": 0, "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99), "identical": True})
            print(json.dumps(out["search"][-1]), flush=True)
            for s in [int(v) for v in args.shards.split(",")]:
                with cray.ShardedSearcher(uri, shards=s) as sharded:
                    sharded.search(xq, 10)  # warm
                    lat = []
                    for q in xq:
                        t = time.perf_counter()
                        sharded.search(q, 10)
                        lat.append(time.perf_counter() - t)
                    t = time.perf_counter()
                    d, i = sharded.search(xq, 10)
                    batch_s = time.perf_counter() - t
                row = {
                    "shards": s,
                    "p50_ms": pct(lat, 50),
                    "p99_ms": pct(lat, 99),
                    "batch_qps": len(xq) / batch_s,
                    "identical": bool((i == i_ref).all() and (d == d_ref).all()),
                }
                out["search"].append(row)
                print(json.dumps(row), flush=True)
        ray.shutdown()
    shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
