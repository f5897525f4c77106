"""The README table from load.sh's JSON lines: python3 table.py OUT.jsonl"""
import json
import sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("| threads | while | saturation (wrk) req/s | saturation (serve-load) req/s | at req/s | p50 ms | p99 ms | errors | writer: added in s | RSS before → after MiB |")
print("|---:|---|---:|---:|---:|---:|---:|---:|---|---|")
mib = lambda b: f"{b / 2**20:.0f}"
for t in sorted({r["threads"] for r in rows}):
    for mode in ("alone", "indexing"):
        sat = next(r for r in rows if r["threads"] == t and r["mode"] == mode and r["run"] == "saturation")
        half = next(r for r in rows if r["threads"] == t and r["mode"] == mode and r["run"] == "half")
        p = half["serve_load"]
        errors = sat["wrk"]["connect"] + sat["wrk"]["read"] + sat["wrk"]["write"] + sat["wrk"]["status"] + sat["wrk"]["timeout"]
        own = sat["serve_load"]
        errors += (own["errors"] if own else 0) + p["errors"]
        own_rps = "%.0f" % own["throughput"] if own else "–"
        w = half["writer"]
        writer = f'{w["added"]} in {w["sync_seconds"]} s' if w else "–"
        while_ = "alone" if mode == "alone" else "a writer adds 1,000 photos"
        print(f'| {t} | {while_} | {sat["wrk"]["rps"]:.0f} | {own_rps} | {half["rate"]} | {p["p50_ms"]:.2f} | {p["p99_ms"]:.2f} | {errors} | {writer} | {mib(half["rss_before"])} → {mib(half["rss_after"])} |')
