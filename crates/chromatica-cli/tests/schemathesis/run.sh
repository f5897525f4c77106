#!/usr/bin/env bash
# Property-based fuzzing of `chromatica serve` from its own /openapi.json
# with schemathesis: every documented operation, every check but
# positive_data_acceptance (random bytes in a schema-valid upload are not an
# image, so a 400 is right), no 5xx. Bounded: N examples per operation
# (default 100) and a 5-minute cap.
#   crates/chromatica-cli/tests/schemathesis/run.sh PATH/TO/chromatica [N]
set -euo pipefail
bin=$(realpath "$1")
examples=${2:-100}
tmp=$(mktemp -d)
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
mkdir "$tmp/photos"
# A few two-colour 24-bit BMPs (no image library needed).
python3 - "$tmp/photos" <<'PY'
import struct, sys, os
def bmp(path, w, h, a, b):
    row = (w * 3 + 3) // 4 * 4
    px = bytearray()
    for y in range(h):
        line = bytearray()
        for x in range(w):
            r, g, bl = a if x < w // 2 else b
            line += bytes((bl, g, r))
        px += line + b"\0" * (row - len(line))
    head = b"BM" + struct.pack("<IHHI", 54 + len(px), 0, 0, 54)
    head += struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, len(px), 2835, 2835, 0, 0)
    open(path, "wb").write(head + px)
cols = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (67, 99, 216), (245, 130, 48), (145, 30, 180)]
for i, a in enumerate(cols):
    for j, b in enumerate(cols):
        bmp(os.path.join(sys.argv[1], f"p{i}{j}.bmp"), 48, 32, a, b)
PY
"$bin" serve "$tmp/idx" --bind 127.0.0.1:0 --watch "$tmp/photos" --watch-interval 0 > "$tmp/out" 2> "$tmp/err" &
server=$!
for _ in $(seq 100); do
    grep -q "listening on" "$tmp/out" 2>/dev/null && break
    sleep 0.1
done
url=$(sed -n 's/^listening on //p' "$tmp/out")
[ -n "$url" ] || { cat "$tmp/err"; echo "serve did not start"; exit 1; }
for _ in $(seq 100); do
    curl -sf "$url/health" | grep -q '"index_size":36' && break
    sleep 0.1
done
timeout 300 schemathesis run "$url/openapi.json" --checks all --exclude-checks positive_data_acceptance \
    -n "$examples" --request-timeout 10 --seed 1
