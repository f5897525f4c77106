#!/usr/bin/env bash
# The browser end-to-end test of the `chromatica serve` page: Debian's
# chromium (never a downloaded browser) driven by playwright-core from npm.
#   crates/chromatica-cli/tests/browser/run.sh PATH/TO/chromatica [SCREENSHOT.png]
set -euo pipefail
bin=$(realpath "$1")
shot=$(realpath -m "${2:-serve-e2e.png}")
cd "$(dirname "$0")"
[ -x /usr/bin/chromium ] || { echo "needs Debian's chromium at /usr/bin/chromium"; exit 1; }
[ -d node_modules/playwright-core ] || PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 timeout 240 node e2e.mjs "$bin" "$shot"
