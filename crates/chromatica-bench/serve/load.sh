#!/usr/bin/env bash
# The load measurement of `chromatica serve` (issue 13, item 7): /search
# colour queries on loopback against a copy of an index, with 1 and 2
# worker threads, alone and while a writer (the server's own background
# sync, on one thread) adds 1,000 photos. For each: the saturation
# throughput (wrk, closed loop, 8 connections; cross-checked by
# `chromatica-bench serve-load --rate 0`, alone only), then p50/p99 at half of the
# alone saturation (the higher of the two figures) (`serve-load`, open loop, latency from each request's due
# time), errors, and the server's resident memory before and after.
#
#   crates/chromatica-bench/serve/load.sh INDEX_DIR [OUT.jsonl]
# INDEX_DIR: e.g. the 100k histograms loaded with `chromatica create
# --refine`, `train`, `add --vectors` (records without files: file_path
# null). Needs wrk, python3 with Pillow, and the release binaries
# (cargo build --release -p chromatica-cli -p chromatica-bench).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
serve_bin=$target/release/chromatica
load_bin=$target/release/chromatica-bench
src=$(realpath "$1")
out=${2:-serve-load.jsonl}
secs=${SECONDS_PER_RUN:-12}
work=$(mktemp -d)
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
: > "$out"

python3 "$here/make_images.py" "$work/photos" 1000 1600 1200

rss() { awk '/VmRSS/ {print $2 * 1024}' "/proc/$server/status"; }

start() { # threads
    rm -rf "$work/idx" "$work/watch"
    cp -r "$src" "$work/idx"
    mkdir "$work/watch"
    "$serve_bin" serve "$work/idx" --bind 127.0.0.1:0 --threads "$1" --index-threads 1 \
        --watch "$work/watch" --watch-interval 0 > "$work/out" 2> "$work/err" &
    server=$!
    for _ in $(seq 200); do grep -q "listening on" "$work/out" 2>/dev/null && break; sleep 0.05; done
    addr=$(sed -n 's|^listening on http://||p' "$work/out")
    [ -n "$addr" ] || { cat "$work/err"; exit 1; }
    # Warm the page cache and the search path.
    "$load_bin" serve-load --addr "$addr" --rate 0 --seconds 3 --connections 8 > /dev/null
}

stop() {
    kill -TERM "$server"; wait "$server" || true; server=""
}

writer() { # start the sync of 1,000 new photos
    cp "$work/photos/"*.jpg "$work/watch/"
    curl -sf -X POST "http://$addr/index" > /dev/null
}

writer_report() { # wait for the sync, print its summary as JSON
    for _ in $(seq 1200); do
        st=$(curl -sf "http://$addr/index/status")
        echo "$st" | grep -q '"running":false' && echo "$st" | grep -q '"runs":[1-9]' && break
        sleep 0.1
    done
    echo "$st" | python3 -c 'import json,sys; s=json.load(sys.stdin); print(json.dumps({"added": s["last"]["summary"]["added"], "sync_seconds": round(s["last"]["summary"]["seconds"], 2), "index_size": s["index_size"]}))'
}

for threads in ${THREADS:-1 2}; do
    for mode in alone indexing; do
        # Saturation.
        start "$threads"
        rss0=$(rss)
        [ "$mode" = indexing ] && writer
        wrk_line=$(wrk -t1 -c8 -d"${secs}s" -s "$here/search.lua" "http://$addr" | sed -n 's/^WRK //p')
        sync=null
        own=null
        if [ "$mode" = indexing ]; then
            # (The cross-check would run after the sync: left out.)
            sync=$(writer_report)
        else
            own=$("$load_bin" serve-load --addr "$addr" --rate 0 --seconds "$secs" --connections 8)
        fi
        rss1=$(rss)
        stop
        echo "{\"threads\":$threads,\"mode\":\"$mode\",\"run\":\"saturation\",\"wrk\":$wrk_line,\"serve_load\":$own,\"writer\":$sync,\"rss_before\":$rss0,\"rss_after\":$rss1}" | tee -a "$out"
        if [ "$mode" = alone ]; then
            # The higher of the two closed-loop figures (the stricter half),
            # or wrk's alone with HALF_OF=wrk.
            if [ "${HALF_OF:-max}" = wrk ]; then
                sat=$(python3 -c "import json; print(json.loads('$wrk_line')['rps'])")
            else
                sat=$(python3 -c "import json; print(max(json.loads('$wrk_line')['rps'], json.loads('$own')['throughput']))")
            fi
        fi
        # Half of the alone saturation, open loop.
        half=$(python3 -c "print(round($sat / 2))")
        start "$threads"
        rss0=$(rss)
        [ "$mode" = indexing ] && writer
        paced=$("$load_bin" serve-load --addr "$addr" --rate "$half" --seconds "$secs" --connections 8)
        sync=null
        [ "$mode" = indexing ] && sync=$(writer_report)
        rss1=$(rss)
        stop
        echo "{\"threads\":$threads,\"mode\":\"$mode\",\"run\":\"half\",\"rate\":$half,\"serve_load\":$paced,\"writer\":$sync,\"rss_before\":$rss0,\"rss_after\":$rss1}" | tee -a "$out"
    done
done
python3 "$here/table.py" "$out"
