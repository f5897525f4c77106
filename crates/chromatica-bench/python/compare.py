#!/usr/bin/env python3
"""Chromatica vs faiss IndexIVFPQ, side by side, in one run on one data set.

    python3 crates/chromatica-bench/python/compare.py --data /tmp/chromatica-data/100k [--save DIR]

Needs a release build (`cargo build --release`) and `pip install faiss-cpu
numpy`. Data: a directory from ../shared/tools/make_dataset.py (base.fvecs,
query.fvecs, gt.ivecs). Prints one Markdown table, ready to paste into
README.md; progress goes to stderr.

Method
  * Both sides run the same procedure (`chromatica-bench bench`, and
    bench/faiss_ivfpq.py): train IndexIVFPQ-style quantizers on the first
    --train-n base vectors, add all base vectors, then time every search
    once per thread count. The build runs on 1 thread; searches run with 1
    thread, 2 threads and all cores (the distinct values of those; override
    with --threads). faiss's threads are OpenMP threads, ours a rayon pool.
  * Noise: the whole procedure runs --rounds times (default 3), the two
    engines building in turn, the order alternating each round (ours first,
    then faiss first, ...). Searches are interleaved finely: both engines
    stay up after their build (`--serve`), and this script asks each in
    turn for one timed pass over all queries (batched, one per call,
    two-stage; per thread count; --repeat times, alternating who goes
    first), so that a slow patch of the shared machine hits both alike.
    Each engine first runs one untimed pass of each kind (warm-up; its
    results give recall). Across all passes and rounds a timing is the
    best (highest q/s, lowest seconds), an open time the median of all
    opens of all rounds, a memory figure the median. Recall, quantization
    error and sizes do not vary (both trainings are seeded).
  * Memory: after each round, each engine's index is opened in a fresh
    child process (`chromatica-bench bench-rss`, `faiss_ivfpq.py --rss-only`) that
    loads the queries and reads VmRSS from /proc/self/status (baseline),
    opens the index and reads it again, runs 1,000 queries one per call
    (k=10, one thread) and reads it again. The table shows the growth over
    the baseline; the baseline itself (our binary; Python + numpy + faiss)
    is shown on its own row. VmRSS counts the pages of our memory-mapped
    files that searches touched.
  * Ratios read "how many times better chromatica is": ours/faiss for
    speeds and recall, faiss/ours for times, errors, memory and bytes.
  * Targets (issue 5; defined for 1 thread, d 1152, nlist 100, m 8, nbits 8,
    nprobe 10, 100k vectors): search >= 2x faiss q/s at recall@10 >= faiss
    - 0.01; training time <= faiss at both quantization errors <= 1.02x
    faiss; add time <= faiss; two-stage >= 1.5x faiss IndexIVFPQ +
    IndexRefineFlat at recall@10 >= faiss - 0.01.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, HERE)
from faiss_ivfpq import add_ivf_args  # noqa: E402

RECALL_SLACK = 0.01
MSE_SLACK = 1.02
TARGET_SETTING = {"d": 1152, "nlist": 100, "m": 8, "nbits": 8, "nprobe": 10, "n": 100000}


# ---------------------------------------------------------------- pure parts
def aggregate(runs):
    """One result from several runs of one engine: the best timing (max q/s
    and vectors/s, min seconds), the median of all opens, the median of any
    other number; non-numbers from the first run."""
    out = {}
    for key in runs[0]:
        vals = [r[key] for r in runs if r.get(key) is not None]
        nums = [v for v in vals if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if key == "open_ms_all":
            out[key] = [x for v in vals for x in v]
        elif len(nums) != len(vals) or not nums:
            out[key] = vals[0] if vals else None
        elif "_qps" in key or key.endswith("_vps"):
            out[key] = max(nums)
        elif key.endswith("_s"):
            out[key] = min(nums)
        elif all(x == nums[0] for x in nums):
            out[key] = nums[0]  # deterministic figures keep their type
        else:
            out[key] = median(nums)
    if out.get("open_ms_all"):
        out["open_ms"] = median(out["open_ms_all"])
    if out.get("add_s"):
        out["add_vps"] = out["n"] / out["add_s"]
    return out


def median(values):
    """The median, or None when there is nothing to take it of."""
    return statistics.median(values) if values else None


def ratio(ours, theirs, higher_better):
    """How many times better chromatica is; None when undefined."""
    if ours is None or theirs is None:
        return None
    if higher_better:
        return ours / theirs if theirs else None
    return theirs / ours if ours else None


def verdicts(o, f):
    """Issue 5's targets, at 1 thread: {row key: (passed, why)}."""
    v = {}

    def search(qps_key, recall_key, need):
        r = ratio(o.get(qps_key), f.get(qps_key), True)
        ro, rf = o.get(recall_key), f.get(recall_key)
        if r is None or ro is None or rf is None:
            return None
        if r < need:
            return (False, f"{r:.2f}× < {need}×")
        if ro < rf - RECALL_SLACK:
            return (False, f"recall@10 {ro:.4f} < {rf:.4f} − {RECALL_SLACK}")
        return (True, "")

    v["search_batch_qps_t1"] = search("search_batch_qps_t1", "recall_at_10", 2.0)
    v["search_single_qps_t1"] = search("search_single_qps_t1", "single_recall_at_10", 2.0)
    v["refine_qps_t1"] = search("refine_qps_t1", "refine_recall_at_10", 1.5)
    for key in ("coarse_mse", "pq_mse"):
        if o.get(key) is not None and f.get(key) is not None:
            ok = o[key] <= MSE_SLACK * f[key]
            v[key] = (ok, "" if ok else f"{o[key] / f[key]:.3f}× faiss's error")
    if o.get("train_s") and f.get("train_s"):
        why = []
        if o["train_s"] > f["train_s"]:
            why.append(f"time {o['train_s'] / f['train_s']:.2f}× faiss's")
        why += [key.replace("_", " ") for key in ("coarse_mse", "pq_mse") if v.get(key) and not v[key][0]]
        v["train_s"] = (not why, ", ".join(why))
    if o.get("add_s") and f.get("add_s"):
        ok = o["add_s"] <= f["add_s"]
        v["add_vps"] = (ok, "" if ok else f"time {o['add_s'] / f['add_s']:.2f}× faiss's")
    return v


def speedup(res, key, t):
    one, many = res.get(f"{key}_t1"), res.get(f"{key}_t{t}")
    return many / one if one and many else None


def fmt(v, kind):
    if v is None:
        return "—"
    if kind == "recall":
        return f"{v:.4f}"
    if kind == "mse":
        return f"{v:.5f}"
    if kind == "mib":
        return f"{v / 2**20:,.1f}"
    if kind == "x":
        return f"{v:.2f}×"
    if kind == "int":
        return f"{v:,.0f}"
    return f"{v:,.2f}"


def threads_label(t):
    return "1 thread" if t == 1 else f"{t} threads"


def rows(o, f, threads):
    """(label, ours, faiss, kind, higher_better, target, verdict key) rows."""
    v_targets = {
        "search_batch_qps_t1": "≥ 2× at recall@10 ≥ faiss − 0.01",
        "search_single_qps_t1": "≥ 2× at recall@10 ≥ faiss − 0.01",
        "refine_qps_t1": "≥ 1.5× at recall@10 ≥ faiss − 0.01",
        "train_s": "≤ 1× faiss time, both MSEs ≤ 1.02×",
        "coarse_mse": "≤ 1.02× faiss",
        "pq_mse": "≤ 1.02× faiss",
        "add_vps": "add time ≤ 1× faiss",
    }
    out = []

    def row(label, key, kind, higher, ours=None, theirs=None):
        ov = o.get(key) if ours is None else ours
        fv = f.get(key) if theirs is None else theirs
        out.append((label, ov, fv, kind, higher, v_targets.get(key, ""), key))

    k, sk, cand = o.get("k"), o.get("single_k"), o.get("candidates")
    for t in threads:
        row(f"search q/s, batched (k={k}), {threads_label(t)}", f"search_batch_qps_t{t}", "num", True)
        row(f"search q/s, one query per call (k={sk}), {threads_label(t)}", f"search_single_qps_t{t}", "num", True)
    for t in threads:
        if t > 1:
            row(f"batched search speed-up, {t} threads over 1", f"speedup_t{t}", "x", True,
                speedup(o, "search_batch_qps", t), speedup(f, "search_batch_qps", t))
    for r in (1, 10, 100):
        row(f"recall@{r}", f"recall_at_{r}", "recall", True)
    row(f"recall@10, one query per call (k={sk})", "single_recall_at_10", "recall", True)
    for r in (1, 10, 100):
        row(f"recall@{r}, duplicates counted as ties", f"tie_recall_at_{r}", "recall", True)
    row("train time (s), 1 thread", "train_s", "num", False)
    row(f"coarse MSE ({o.get('train_n'):,} training vectors)", "coarse_mse", "mse", False)
    row(f"PQ reconstruction MSE ({o.get('train_n'):,} training vectors)", "pq_mse", "mse", False)
    row("PQ reconstruction MSE (all base vectors)", "pq_mse_base", "mse", False)
    row("add throughput (vectors/s), 1 thread", "add_vps", "int", True)
    for t in threads:
        row(f"two-stage q/s ({cand} candidates, exact L2 re-rank, k={k}; faiss: IndexRefineFlat, "
            f"k_factor {cand / k:g}), {threads_label(t)}", f"refine_qps_t{t}", "num", True)
    row("two-stage recall@10", "refine_recall_at_10", "recall", True)
    row("two-stage recall@10, duplicates counted as ties", "refine_tie_recall_at_10", "recall", True)
    n_opens = len(o.get("open_ms_all") or [])
    row(f"open time (ms), median of {n_opens} warm opens", "open_ms", "num", False)
    row("open time (ms) in a fresh process", "rss_open_ms", "num", False)
    rq = o.get("rss_queries")
    row("RSS growth after open (MiB over the process baseline)", "rss_open_growth", "mib", False)
    row(f"RSS growth after {rq or 1000:,} queries (k=10, one per call; MiB over baseline)",
        "rss_queries_growth", "mib", False)
    row("process baseline RSS (MiB; queries loaded; faiss: Python + numpy + faiss)", "rss_baseline", "mib", None)
    row("bytes per vector on disk", "disk_bytes_per_vector", "num", False)
    return out


def table(o, f, threads):
    v = verdicts(o, f)
    lines = ["| measure | chromatica | faiss | ratio (>1: chromatica better) | target | result |",
             "|---|---:|---:|---:|---|---|"]
    for label, ov, fv, kind, higher, target, key in rows(o, f, threads):
        if ov is None and fv is None:
            continue
        r = ratio(ov, fv, higher) if higher is not None else None
        verdict = v.get(key)
        result = "" if verdict is None else ("PASS" if verdict[0] else f"FAIL ({verdict[1]})" if verdict[1] else "FAIL")
        lines.append(f"| {label} | {fmt(ov, kind)} | {fmt(fv, kind)} | {fmt(r, 'x')} | {target} | {result} |")
    return lines


def with_rss(res, rss):
    """Adds the child process's memory figures (medians over rounds)."""
    res = dict(res)
    if rss:
        pick = lambda key: median([r[key] for r in rss])  # noqa: E731
        res["rss_baseline"] = pick("baseline_rss")
        res["rss_open_growth"] = pick("open_rss") - res["rss_baseline"]
        res["rss_queries_growth"] = pick("queries_rss") - res["rss_baseline"]
        res["rss_open_ms"] = pick("open_ms")
        res["rss_queries"] = rss[0]["queries"]
    return res


def default_threads():
    return sorted({1, 2, os.cpu_count() or 1})


# ---------------------------------------------------------------- running
KINDS = ("batch", "single", "refine")


def fail(cmd, why):
    sys.exit(f"{why}: {' '.join(cmd)}")


def run_json(cmd):
    print("  $ " + " ".join(cmd), file=sys.stderr, flush=True)
    out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if out.returncode != 0:
        fail(cmd, f"failed ({out.returncode})")
    return json.loads(out.stdout)


class Server:
    """An engine's `--serve` process: builds, then times passes on request.
    Its stderr goes to ours, so that its errors are seen."""

    def __init__(self, cmd):
        print("  $ " + " ".join(cmd), file=sys.stderr, flush=True)
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        if self.proc.stdout.readline().strip() != "ready":
            fail(cmd, f"did not get ready (exit status {self.proc.wait()})")

    def ask(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline()
        if not reply:
            fail(self.cmd, f"stopped on {line!r} (exit status {self.proc.wait()})")
        return json.loads(reply)

    def finish(self):
        self.proc.stdin.write("end\n")
        self.proc.stdin.close()
        out = self.proc.stdout.read()
        if self.proc.wait() != 0:
            fail(self.cmd, f"failed ({self.proc.returncode})")
        return json.loads(out)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--threads", help="thread counts of the search passes (default: 1, 2 and all cores)")
    add_ivf_args(ap)
    ap.add_argument("--rounds", type=int, default=3, help="alternating runs of both engines (default 3)")
    ap.add_argument("--repeat", type=int, default=3, help="timed passes of each search kind per round")
    ap.add_argument("--opens", type=int, default=7, help="opens per round for the open time")
    ap.add_argument("--appends", type=int, default=1000,
                    help="chromatica only, first round: appends of 100 vectors (merge policy); 0 skips")
    ap.add_argument("--rss-queries", type=int, default=1000)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "chromatica-bench"))
    ap.add_argument("--save", help="also write every run's raw JSON and the summary to this directory")
    a = ap.parse_args()
    threads = sorted({int(t) for t in a.threads.split(",")}) if a.threads else default_threads()
    if min(threads) < 1 or a.rounds < 1:
        sys.exit("--threads and --rounds must be at least 1")
    if 1 not in threads:
        threads = [1] + threads  # the build and the targets are at 1 thread
    common = ["--data", a.data, "--threads", ",".join(map(str, threads)), "--nlist", str(a.nlist),
              "--m", str(a.m), "--nbits", str(a.nbits), "--nprobe", str(a.nprobe), "--train-n", str(a.train_n),
              "--repeat", str(a.repeat), "--opens", str(a.opens), "--json"]
    queries = os.path.join(a.data, "query.fvecs")
    runs = {"chromatica": [], "faiss": []}
    rss = {"chromatica": [], "faiss": []}
    passes = {"chromatica": [], "faiss": []}
    work = tempfile.mkdtemp(prefix="chromatica-compare-")
    servers = {}
    try:
        for r in range(a.rounds):
            order = ["chromatica", "faiss"] if r % 2 == 0 else ["faiss", "chromatica"]
            kept = {"chromatica": os.path.join(work, f"ours-{r}"), "faiss": os.path.join(work, f"faiss-{r}.index")}
            for side in order:
                print(f"round {r + 1}/{a.rounds}: {side} builds", file=sys.stderr, flush=True)
                if side == "chromatica":
                    appends = a.appends if r == 0 else 0
                    cmd = [a.bin, "bench", *common, "--appends", str(appends), "--keep", kept[side], "--serve"]
                else:
                    cmd = [sys.executable, os.path.join(HERE, "faiss_ivfpq.py"), *common, "--keep", kept[side],
                           "--serve"]
                servers[side] = Server(cmd)
            print(f"round {r + 1}/{a.rounds}: searches, taking turns", file=sys.stderr, flush=True)
            for t in threads:
                for kind in KINDS:
                    for rep in range(a.repeat):
                        for side in (order if rep % 2 == 0 else order[::-1]):
                            passes[side].append(servers[side].ask(f"{kind} {t}"))
            for side in order:
                runs[side].append(servers.pop(side).finish())
            for side in order:
                if side == "chromatica":
                    cmd = [a.bin, "bench-rss", "--index", kept[side], "--queries", queries,
                           "--count", str(a.rss_queries), "--k", "10"]
                else:
                    cmd = [sys.executable, os.path.join(HERE, "faiss_ivfpq.py"), "--rss-only", "--index", kept[side],
                           "--queries", queries, "--count", str(a.rss_queries), "--single-k", "10",
                           "--nprobe", str(a.nprobe)]
                rss[side].append(run_json(cmd))
            shutil.rmtree(kept["chromatica"], ignore_errors=True)
            if os.path.exists(kept["faiss"]):
                os.unlink(kept["faiss"])
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(work, ignore_errors=True)

    ours = with_rss(aggregate(runs["chromatica"]), rss["chromatica"])
    theirs = with_rss(aggregate(runs["faiss"]), rss["faiss"])
    lines = [f"data {a.data}: n {ours['n']:,}, queries {ours['nq']:,}, d {ours['d']}; nlist {a.nlist}, m {a.m}, "
             f"nbits {a.nbits}, nprobe {a.nprobe}; {ours['train_n']:,} training vectors; build on 1 thread; "
             f"faiss {theirs.get('faiss_version')}; {os.cpu_count()} cores; {a.rounds} rounds; searches: best of "
             f"{a.rounds * a.repeat} passes, taking turns with faiss", ""]
    lines += table(ours, theirs, threads)
    setting = {key: ours.get(key) for key in TARGET_SETTING}
    if setting != TARGET_SETTING:
        lines += ["", f"Note: the targets are defined for {TARGET_SETTING}; this run has {setting}."]
    lines += ["", "Chromatica only:", "", "| measure | value |", "|---|---:|"]
    extra = [
        ("add_refine_s", "add time with the refine store (s), 1 thread", "num"),
        ("refine_bytes_per_vector", "refine store bytes per vector on disk", "num"),
        ("resident_bytes_per_vector", "resident heap bytes per vector (codes, ids, refine are mapped)", "num"),
        ("emd_qps", f"two-stage q/s, Sinkhorn EMD re-rank (first {ours.get('emd_queries')} queries)", "num"),
        ("emd_recall_at_10", "two-stage recall@10, EMD re-rank (vs L2 ground truth)", "recall"),
        ("appends", "appends of 100 vectors (automatic merges)", "int"),
        ("segments_after_appends", "segments after those appends", "int"),
        ("appended_over_compacted", "search time after appends / fully compacted", "num"),
    ]
    for key, label, kind in extra:
        if ours.get(key) is not None:
            lines.append(f"| {label} | {fmt(ours[key], kind)} |")
    if theirs.get("python_call_overhead_us") is not None:
        lines += ["", f"faiss's one-query-per-call timings include Python's cost of a call, "
                      f"{theirs['python_call_overhead_us']:.1f} µs (an empty index's search)."]
    print("\n".join(lines))
    if a.save:
        os.makedirs(a.save, exist_ok=True)
        raw = {"runs": runs, "rss": rss, "passes": passes, "chromatica": ours, "faiss": theirs,
               "verdicts": verdicts(ours, theirs), "threads": threads}
        with open(os.path.join(a.save, "compare.json"), "w") as fh:
            json.dump(raw, fh, indent=1)
        with open(os.path.join(a.save, "table.md"), "w") as fh:
            fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
