#!/usr/bin/env python3
"""One library of peers.py's side-by-side run, in a process of its own.

    peer_engines.py --engine NAME --data DIR --work DIR [build options]   (peers.py starts these)
    peer_engines.py --rss NAME --paths JSON --setting S --queries FILE [--count 1000]
    peer_engines.py --faiss-process --index FILE --queries FILE --out FILE [--threads T]

Engines (each library's import happens inside its class, so that the unit
tests need only numpy): chromatica (the Python package: a plain index for
stage 1 and a refine index for the two-stage search), faiss-ivf
(IndexIVFPQ and IndexIVFPQ + IndexRefineFlat), lance (pylance IVF_PQ,
without and with refine_factor), faiss-hnsw (IndexHNSWFlat), hnswlib and
usearch (HNSW).

Worker mode: builds (timed, all cores), saves to --work, prints "ready",
then answers one command a line with one JSON line (compare.Server's
protocol):
    info                 build seconds, bytes on disk and file paths per variant
    recall SETTING       recall@1/10 of a k=10 pass and recall@100 of a k=100 pass, plain and ties
    sweep TARGET         HNSW only: efSearch values bracketing tie-aware recall@10 TARGET
    batch SETTING T      seconds of one batched k=10 pass over all queries with T threads
    single SETTING       seconds, p50 and p99 µs of one pass of one k=10 query per call, 1 thread
    end                  stop (replies {})
A SETTING names a variant: "stage1", "two-stage", "ivfpq", "ivfpq+refine",
"ivf_pq", "ivf_pq+refine", or "ef=N" for an HNSW efSearch.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from faiss_ivfpq import add_ivf_args, read_fvecs, read_ivecs, read_rss, recall_at, tie_aware_recall_at  # noqa: E402

K = 10  # the k of every timed pass (the targets are at recall@10)
K_RECALL = 100  # the k of the untimed pass that gives recall@100


# ---------------------------------------------------------------- pure parts
def percentile_us(seconds, q):
    """The q-th percentile (0-100, nearest rank) of per-call seconds, in µs."""
    if not seconds:
        return None
    s = sorted(seconds)
    rank = max(1, int(np.ceil(q / 100 * len(s))))
    return s[rank - 1] * 1e6


def bracket_ef(recall_of, target, start=10, limit=1024, rel_gap=0.125):
    """efSearch values (lo, hi) with recall_of(lo) < target <= recall_of(hi),
    hi - lo at most max(1, lo * rel_gap), found by doubling from `start` then
    bisecting; recall_of is called once per value. lo is None when `start`
    already reaches the target; hi is None when `limit` does not, and lo is
    then the smallest ef of the best recall seen (graphs plateau: no need
    to time a slower ef for nothing). Returns (lo, hi, {ef: recall})."""
    seen = {}

    def r(ef):
        if ef not in seen:
            seen[ef] = recall_of(ef)
        return seen[ef]

    if r(start) >= target:
        return None, start, seen
    lo = start
    while True:
        hi = min(lo * 2, limit)
        if r(hi) >= target:
            break
        if hi >= limit:
            top = max(seen.values())
            return min(ef for ef, r_ in seen.items() if r_ == top), None, seen
        lo = hi
    while hi - lo > max(1, int(lo * rel_gap)):
        mid = (lo + hi) // 2
        if r(mid) >= target:
            hi = mid
        else:
            lo = mid
    return lo, hi, seen


def parse_ef(setting):
    """"ef=64" -> 64."""
    name, sep, value = setting.partition("=")
    if name != "ef" or not sep or not value.isdigit() or int(value) < 1:
        raise ValueError(f"{setting!r} is not ef=N")
    return int(value)


def disk_bytes(path):
    """Bytes of a file, or of every file under a directory."""
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


# ---------------------------------------------------------------- engines
class Engine:
    """A library's indexes. build() fills self.paths and returns
    {variant: {"build_s", "disk_bytes"}}; open() loads them back from paths
    (the RSS children); search(setting, q, k) answers a 2-D batch with the
    threads of set_threads(); search_one(setting, q, k) one 1-D query."""

    name = ""
    variants = ()
    hnsw = False

    def __init__(self, a):
        self.a = a
        self.paths = {}

    def version(self):
        return ""


class Chromatica(Engine):
    name = "chromatica"
    variants = ("stage1", "two-stage")

    def __init__(self, a):
        super().__init__(a)
        import chromatica

        self.lib = chromatica
        self.idx = {}

    def version(self):
        return self.lib.__version__

    def build(self, base, xt, work):
        a, out = self.a, {}
        for variant, refine in (("stage1", False), ("two-stage", True)):
            path = os.path.join(work, f"chromatica-{variant}")

            def make():
                idx = self.lib.Index.create(path, dim=base.shape[1], nlist=a.nlist, m=a.m, nbits=a.nbits,
                                            nprobe=a.nprobe, refine=refine)
                idx.train(xt)
                idx.add(base)
                return idx

            secs, self.idx[variant] = timed(make)
            self.paths[variant] = path
            out[variant] = {"build_s": secs, "disk_bytes": disk_bytes(path)}
        return out

    def open(self, setting):
        self.idx[setting] = self.lib.Index.open(self.paths[setting], read_only=True)

    def set_threads(self, t):
        self.lib.set_num_threads(t)

    def _kw(self, setting):
        return {"rerank": "l2", "candidates": self.a.candidates} if setting == "two-stage" else {}

    def search(self, setting, q, k):
        return self.idx[setting].search(q, k, **self._kw(setting))[1]

    def search_one(self, setting, q, k):
        return self.idx[setting].search(q, k, **self._kw(setting))[1][0]


class FaissIvf(Engine):
    name = "faiss-ivf"
    variants = ("ivfpq", "ivfpq+refine")

    def __init__(self, a):
        super().__init__(a)
        import faiss

        self.faiss = faiss
        self.idx = {}

    def version(self):
        return self.faiss.__version__

    def build(self, base, xt, work):
        f, a = self.faiss, self.a

        def make():
            idx = f.IndexIVFPQ(f.IndexFlatL2(base.shape[1]), base.shape[1], a.nlist, a.m, a.nbits)
            idx.train(xt)
            idx.add(base)
            idx.nprobe = a.nprobe
            return idx

        secs, ivf = timed(make)
        # IndexRefineFlat(index, xb) copies the base into its flat store
        # beside the filled IVFPQ index (it refuses a non-empty index alone).
        rsecs, refine = timed(lambda: f.IndexRefineFlat(ivf, f.swig_ptr(base)))
        self.idx = {"ivfpq": ivf, "ivfpq+refine": refine}
        out = {}
        for variant, idx, s in (("ivfpq", ivf, secs), ("ivfpq+refine", refine, secs + rsecs)):
            self.paths[variant] = os.path.join(work, f"faiss-{variant}.index")
            f.write_index(idx, self.paths[variant])
            out[variant] = {"build_s": s, "disk_bytes": disk_bytes(self.paths[variant])}
        return out

    def open(self, setting):
        idx = self.faiss.read_index(self.paths[setting])
        self.faiss.extract_index_ivf(idx).nprobe = self.a.nprobe
        self.idx[setting] = idx

    def set_threads(self, t):
        self.faiss.omp_set_num_threads(t)

    def _prepare(self, setting, k):
        if setting == "ivfpq+refine":
            self.idx[setting].k_factor = self.a.candidates / k  # the same candidates as ours
        return self.idx[setting]

    def search(self, setting, q, k):
        return self._prepare(setting, k).search(q, k)[1]

    def search_one(self, setting, q, k):
        return self._prepare(setting, k).search(q[None, :], k)[1][0]


class Lance(Engine):
    """pylance IVF_PQ. Lance has no per-call thread count: its own pool
    (all cores) serves every call; a batch is one to_table with a 2-D q."""

    name = "lance"
    variants = ("ivf_pq", "ivf_pq+refine")

    def __init__(self, a):
        super().__init__(a)
        import lance
        import pyarrow as pa

        self.lance, self.pa = lance, pa
        self.ds = None

    def version(self):
        return self.lance.__version__

    def build(self, base, xt, work):
        pa, a = self.pa, self.a
        path = os.path.join(work, "lance.lance")

        def make():
            vectors = pa.FixedSizeListArray.from_arrays(pa.array(base.reshape(-1), pa.float32()), base.shape[1])
            table = pa.table({"id": pa.array(np.arange(len(base), dtype=np.int64)), "vector": vectors})
            ds = self.lance.write_dataset(table, path)
            ds.create_index("vector", index_type="IVF_PQ", metric="L2", num_partitions=a.nlist,
                            num_sub_vectors=a.m, num_bits=a.nbits)
            return ds

        secs, self.ds = timed(make)
        self.paths = {v: path for v in self.variants}
        size = disk_bytes(path)
        return {v: {"build_s": secs, "disk_bytes": size} for v in self.variants}

    def open(self, setting):
        self.ds = self.lance.dataset(self.paths[setting])

    def set_threads(self, t):
        pass  # see the class comment

    def _nearest(self, setting, q, k):
        n = {"column": "vector", "q": q, "k": k, "minimum_nprobes": self.a.nprobe,
             "maximum_nprobes": self.a.nprobe}
        if setting == "ivf_pq+refine":
            n["refine_factor"] = max(1, round(self.a.candidates / k))
        return n

    def _table(self, setting, q, k):
        return self.ds.to_table(columns=["id"], nearest=self._nearest(setting, q, k),
                                disable_scoring_autoprojection=True)

    def search(self, setting, q, k):
        t = self._table(setting, q, k)
        out = np.full((len(q), k), -1, np.int64)
        qi = t.column("query_index").to_numpy()
        ids = t.column("id").to_numpy()
        for i in range(len(q)):  # rows come grouped by query, nearest first
            row = ids[qi == i][:k]
            out[i, : len(row)] = row
        return out

    def search_one(self, setting, q, k):
        ids = self._table(setting, q, k).column("id").to_numpy()
        out = np.full(k, -1, np.int64)
        out[: len(ids)] = ids[:k]
        return out


class FaissHnsw(Engine):
    name = "faiss-hnsw"
    hnsw = True

    def __init__(self, a):
        super().__init__(a)
        import faiss

        self.faiss = faiss
        self.idx = None

    def version(self):
        return self.faiss.__version__

    def build(self, base, xt, work):
        f = self.faiss

        def make():
            idx = f.IndexHNSWFlat(base.shape[1], self.a.hnsw_m)
            idx.hnsw.efConstruction = self.a.ef_construction
            idx.add(base)
            return idx

        secs, self.idx = timed(make)
        self.paths = {"hnsw": os.path.join(work, "faiss-hnsw.index")}
        f.write_index(self.idx, self.paths["hnsw"])
        return {"hnsw": {"build_s": secs, "disk_bytes": disk_bytes(self.paths["hnsw"])}}

    def open(self, setting):
        self.idx = self.faiss.read_index(self.paths["hnsw"])

    def set_threads(self, t):
        self.faiss.omp_set_num_threads(t)

    def search(self, setting, q, k):
        self.idx.hnsw.efSearch = max(parse_ef(setting), k)
        return self.idx.search(q, k)[1]

    def search_one(self, setting, q, k):
        self.idx.hnsw.efSearch = max(parse_ef(setting), k)
        return self.idx.search(q[None, :], k)[1][0]


class Hnswlib(Engine):
    name = "hnswlib"
    hnsw = True

    def __init__(self, a):
        super().__init__(a)
        import hnswlib

        self.hnswlib = hnswlib
        self.idx = None
        self.threads = 1

    def version(self):
        return getattr(self.hnswlib, "__version__", "")

    def build(self, base, xt, work):
        def make():
            idx = self.hnswlib.Index(space="l2", dim=base.shape[1])
            idx.init_index(max_elements=len(base), M=self.a.hnsw_m, ef_construction=self.a.ef_construction,
                           random_seed=100)
            idx.add_items(base, np.arange(len(base)), num_threads=os.cpu_count() or 1)
            return idx

        secs, self.idx = timed(make)
        self.paths = {"hnsw": os.path.join(work, "hnswlib.bin")}
        self.idx.save_index(self.paths["hnsw"])
        return {"hnsw": {"build_s": secs, "disk_bytes": disk_bytes(self.paths["hnsw"])}}

    def open(self, setting):
        self.idx = self.hnswlib.Index(space="l2", dim=self.a.dim)
        self.idx.load_index(self.paths["hnsw"])

    def set_threads(self, t):
        self.threads = t

    def search(self, setting, q, k):
        self.idx.set_ef(max(parse_ef(setting), k))
        return self.idx.knn_query(q, k, num_threads=self.threads)[0].astype(np.int64)

    def search_one(self, setting, q, k):
        self.idx.set_ef(max(parse_ef(setting), k))
        return self.idx.knn_query(q, k, num_threads=1)[0][0].astype(np.int64)


class Usearch(Engine):
    name = "usearch"
    hnsw = True

    def __init__(self, a):
        super().__init__(a)
        import usearch.index

        self.usearch = usearch.index
        self.idx = None
        self.threads = 1

    def version(self):
        import usearch

        return getattr(usearch, "__version__", "")

    def build(self, base, xt, work):
        def make():
            idx = self.usearch.Index(ndim=base.shape[1], metric="l2sq", dtype="f32",
                                     connectivity=self.a.hnsw_m, expansion_add=self.a.ef_construction)
            idx.add(np.arange(len(base)), base, threads=os.cpu_count() or 1)
            return idx

        secs, self.idx = timed(make)
        self.paths = {"hnsw": os.path.join(work, "usearch.bin")}
        self.idx.save(self.paths["hnsw"])
        return {"hnsw": {"build_s": secs, "disk_bytes": disk_bytes(self.paths["hnsw"])}}

    def open(self, setting):
        self.idx = self.usearch.Index.restore(self.paths["hnsw"])  # loaded, as by default

    def set_threads(self, t):
        self.threads = t

    def search(self, setting, q, k):
        self.idx.expansion_search = max(parse_ef(setting), k)
        return self.idx.search(q, k, threads=self.threads).keys.astype(np.int64)

    def search_one(self, setting, q, k):
        self.idx.expansion_search = max(parse_ef(setting), k)
        keys = self.idx.search(q, k, threads=1).keys.astype(np.int64)
        out = np.full(k, -1, np.int64)
        out[: len(keys)] = keys[:k]
        return out


ENGINES = {e.name: e for e in (Chromatica, FaissIvf, Lance, FaissHnsw, Hnswlib, Usearch)}


# ---------------------------------------------------------------- worker
class Worker:
    def __init__(self, a):
        self.a = a
        self.base = read_fvecs(os.path.join(a.data, "base.fvecs"))
        self.query = read_fvecs(os.path.join(a.data, "query.fvecs"))
        self.gt = read_ivecs(os.path.join(a.data, "gt.ivecs")).astype(np.int64)
        a.dim = self.base.shape[1]
        self.cores = os.cpu_count() or 1
        self.engine = ENGINES[a.engine](a)
        self.engine.set_threads(self.cores)  # every build runs on all cores
        xt = self.base[: min(a.train_n, len(self.base))]
        self.built = self.engine.build(self.base, xt, a.work)

    def recall(self, setting):
        self.engine.set_threads(self.cores)
        i10 = self.engine.search(setting, self.query, K)
        i100 = self.engine.search(setting, self.query, K_RECALL)
        out = {}
        for r, ids in ((1, i10), (10, i10), (100, i100)):
            out[f"recall_at_{r}"] = recall_at(ids, self.gt, r)
            out[f"tie_recall_at_{r}"] = tie_aware_recall_at(ids, self.gt, r, self.base, self.query)
        return out

    def tie_recall10(self, setting):
        self.engine.set_threads(self.cores)
        return tie_aware_recall_at(self.engine.search(setting, self.query, K), self.gt, K, self.base, self.query)

    def sweep(self, target):
        lo, hi, seen = bracket_ef(lambda ef: self.tie_recall10(f"ef={ef}"), target)
        return {"lo": lo, "hi": hi, "seen": sorted(seen.items())}

    def batch(self, setting, threads):
        self.engine.set_threads(threads)
        secs, _ = timed(lambda: self.engine.search(setting, self.query, K))
        return {"s": secs}

    def single(self, setting):
        self.engine.set_threads(1)
        per = []
        t0 = time.perf_counter()
        for q in self.query:
            t = time.perf_counter()
            self.engine.search_one(setting, q, K)
            per.append(time.perf_counter() - t)
        return {"s": time.perf_counter() - t0, "p50_us": percentile_us(per, 50), "p99_us": percentile_us(per, 99)}

    def answer(self, line):
        words = line.split()
        if words == ["info"]:
            return {"engine": self.engine.name, "version": self.engine.version(), "variants": self.built,
                    "paths": self.engine.paths}
        if len(words) == 2 and words[0] == "recall":
            return self.recall(words[1])
        if len(words) == 2 and words[0] == "sweep" and self.engine.hnsw:
            return self.sweep(float(words[1]))
        if len(words) == 3 and words[0] == "batch" and words[2].isdigit() and int(words[2]) >= 1:
            return self.batch(words[1], int(words[2]))
        if len(words) == 2 and words[0] == "single":
            return self.single(words[1])
        raise ValueError(f"peer_engines: {line.strip()!r} is not a command (see the module comment)")


def worker_main(a):
    w = Worker(a)
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() == "end":
            break
        print(json.dumps(w.answer(line)), flush=True)
    print("{}", flush=True)


# ---------------------------------------------------------------- children
def rss_main(a):
    """A fresh process: the library imported and the queries loaded (the
    baseline), the index opened, then `--count` one-per-call k=10 queries
    on one thread; VmRSS after each step (as faiss_ivfpq.py --rss-only)."""
    queries = read_fvecs(a.queries)
    a.dim = queries.shape[1]
    engine = ENGINES[a.rss](a)
    engine.paths = json.loads(a.paths)
    engine.set_threads(1)
    base = read_rss()[0]
    open_s, _ = timed(lambda: engine.open(a.setting))
    opened = read_rss()[0]
    for i in range(a.count):
        engine.search_one(a.setting, queries[i % len(queries)], K)
    print(json.dumps({"baseline_rss": base, "open_rss": opened, "queries_rss": read_rss()[0],
                      "open_ms": open_s * 1000, "queries": a.count}))


def write_ivecs(path, ids):
    rows = np.empty((ids.shape[0], ids.shape[1] + 1), np.int32)
    rows[:, 0] = ids.shape[1]
    rows[:, 1:] = ids
    rows.tofile(path)


def faiss_process_main(a):
    """faiss's counterpart of `chromatica search --vectors`: a whole process
    that opens an IndexRefineFlat file, searches every query and writes the
    ids as .ivecs."""
    import faiss

    faiss.omp_set_num_threads(a.threads)
    queries = read_fvecs(a.queries)
    idx = faiss.read_index(a.index)
    faiss.extract_index_ivf(idx).nprobe = a.nprobe
    idx.k_factor = a.candidates / a.k
    write_ivecs(a.out, idx.search(queries, a.k)[1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--engine", choices=sorted(ENGINES))
    ap.add_argument("--rss", choices=sorted(ENGINES))
    ap.add_argument("--faiss-process", action="store_true")
    ap.add_argument("--data")
    ap.add_argument("--work")
    add_ivf_args(ap)
    ap.add_argument("--candidates", type=int, default=200)
    ap.add_argument("--hnsw-m", type=int, default=32)
    ap.add_argument("--ef-construction", type=int, default=100)
    ap.add_argument("--paths", help="--rss: the JSON of the worker's info paths")
    ap.add_argument("--setting", help="--rss: the variant")
    ap.add_argument("--queries")
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--index", help="--faiss-process: an IndexRefineFlat file")
    ap.add_argument("--out", help="--faiss-process: ids .ivecs")
    ap.add_argument("--k", type=int, default=K)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    a = ap.parse_args()
    if a.rss:
        if not (a.paths and a.setting and a.queries):
            ap.error("--rss needs --paths, --setting and --queries")
        return rss_main(a)
    if a.faiss_process:
        if not (a.index and a.queries and a.out):
            ap.error("--faiss-process needs --index, --queries and --out")
        return faiss_process_main(a)
    if not (a.engine and a.data and a.work):
        ap.error("give --engine with --data and --work, or --rss, or --faiss-process")
    return worker_main(a)


if __name__ == "__main__":
    main()
