#!/usr/bin/env bash
# The `inspect --html` report in Debian's headless chromium (never a
# downloaded browser) driven by playwright-core from npm: builds a small
# index with the given binary, writes its report, renders it, checks the
# screenshot is not blank.
#   crates/chromatica-cli/tests/browser/inspect/run.sh PATH/TO/chromatica [SCREENSHOT.png]
set -euo pipefail
bin=$(realpath "$1")
shot=$(realpath -m "${2:-inspect-report.png}")
cd "$(dirname "$0")"
[ -x /usr/bin/chromium ] || { echo "needs Debian's chromium at /usr/bin/chromium"; exit 1; }
[ -d node_modules/playwright-core ] || PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 - "$tmp/v.fvecs" <<'PY'
import random, struct, sys
random.seed(5)
d = 16
centres = [[random.gauss(0, 3) for _ in range(d)] for _ in range(12)]
with open(sys.argv[1], "wb") as f:
    for i in range(4000):
        c = centres[i % 12] if i % 5 else centres[0]
        f.write(struct.pack("<i", d) + struct.pack("<%df" % d, *[x + random.gauss(0, 0.8) for x in c]))
PY
"$bin" create "$tmp/idx" --dim 16 --nlist 32 --m 4 --nbits 8 --nprobe 2 --refine >/dev/null
"$bin" train "$tmp/idx" --vectors "$tmp/v.fvecs" >/dev/null
"$bin" add "$tmp/idx" --vectors "$tmp/v.fvecs" >/dev/null
"$bin" add "$tmp/idx" --vectors "$tmp/v.fvecs" >/dev/null
python3 -c "import struct,sys; open(sys.argv[1],'wb').write(b''.join(struct.pack('<ii',1,i) for i in range(0,8000,3)))" "$tmp/del.ivecs"
"$bin" delete "$tmp/idx" --ids "$tmp/del.ivecs" >/dev/null
timeout 120 "$bin" inspect "$tmp/idx" --html "$tmp/report.html" --sample 500 --queries 50 >/dev/null
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 timeout 150 node report.mjs "$tmp/report.html" "$shot"
