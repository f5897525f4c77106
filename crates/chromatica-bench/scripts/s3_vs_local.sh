#!/usr/bin/env bash
# The README's "local directory vs S3" table: the same CLI commands on a
# local directory and on moto's S3 server (started on loopback, stopped at
# the end), on 20,000 vectors of the 100k colour set.
# Usage: CHROMATICA=target/release/chromatica s3_vs_local.sh [DATA_DIR]
set -euo pipefail
B=$(realpath "${CHROMATICA:-target/release/chromatica}")
export DATA=$(realpath "${1:-/tmp/chromatica-data/100k}")
export W=$(mktemp -d)
cd "$W"
python3 - <<'PY'
import numpy as np, os
d, data, w = 1152, os.environ["DATA"], os.environ["W"]
a = np.memmap(f"{data}/base.fvecs", dtype=np.int32, mode="r").reshape(-1, d + 1)
a[:20000].tofile(f"{w}/sub.fvecs")
a[:5000].tofile(f"{w}/train.fvecs")
q = np.memmap(f"{data}/query.fvecs", dtype=np.int32, mode="r").reshape(-1, d + 1)
q[:200].tofile(f"{w}/q.fvecs")
PY
PORT=$(python3 -c "import socket;s=socket.socket();s.bind(('127.0.0.1',0));print(s.getsockname()[1])")
moto_server -H 127.0.0.1 -p "$PORT" >/dev/null 2>&1 &
MOTO=$!
trap 'kill $MOTO; rm -rf "$W"' EXIT
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.1; done
curl -s -X PUT "http://127.0.0.1:$PORT/bench" >/dev/null
export AWS_ACCESS_KEY_ID=t AWS_SECRET_ACCESS_KEY=t AWS_REGION=us-east-1
export AWS_ENDPOINT_URL=http://127.0.0.1:$PORT CHROMATICA_CACHE_DIR=$W/cache
t() { local s; s=$(date +%s.%N); "$@" >/dev/null; python3 -c "print(f'{$(date +%s.%N)-$s:.2f} s')"; }
for target in "$W/local-idx" s3://bench/idx; do
  echo "== $target"
  echo "create  $(t "$B" create "$target" --dim 1152 --nlist 128 --m 16 --nbits 8 --nprobe 16 --refine)"
  echo "train   $(t "$B" train "$target" --vectors train.fvecs --seed 1 2>/dev/null)"
  echo "add     $(t "$B" add "$target" --vectors sub.fvecs)"
  echo "search  $(t "$B" search "$target" --vectors q.fvecs --k 10 --out "res-$(basename "$target").ivecs")"
  if [[ $target == s3* ]]; then
    echo "cache bytes after writing: $(du -sb cache | cut -f1)"
    rm -rf cache
    echo "search (empty cache) $(t "$B" search "$target" --vectors q.fvecs --k 10 --out res-cold.ivecs)"
    echo "cache bytes after it: $(du -sb cache | cut -f1)"
    echo "search (warm cache) $(t "$B" search "$target" --vectors q.fvecs --k 10 --out res-warm.ivecs)"
    echo "verify  $(t "$B" verify "$target")"
    cmp res-cold.ivecs res-idx.ivecs && echo "empty-cache results identical"
  else
    echo "index bytes: $(du -sb "$target" | cut -f1)"
    echo "verify  $(t "$B" verify "$target")"
  fi
done
cmp res-local-idx.ivecs res-idx.ivecs && echo "S3 and local results identical"
