#!/usr/bin/env bash
# Runs every fuzz target (or those named after N) for N seconds each
# (default 30), after replaying the saved regression inputs, and prints the
# executions per target. Exits non-zero if any target crashed. The seeds are
# written first into corpus-seeds/ by examples/make_seeds.rs, from the main
# crate's test fixtures, its golden index and genuine tiny indexes.
#
#   fuzz/run.sh            # 30 s per target
#   fuzz/run.sh 120 ops_model index_dir
#
# Works with the stable toolchain: RUSTC_BOOTSTRAP=1 lets stable rustc take
# the nightly-only -Zsanitizer=address flag cargo-fuzz passes. Set
# FUZZ_SANITIZER=none to build without AddressSanitizer (faster, and needs
# no RUSTC_BOOTSTRAP). Needs cargo-fuzz: `cargo install cargo-fuzz`.
set -uo pipefail

secs=${1:-30}
shift || true
cd "$(dirname "$0")"
all=(manifest quantizer_file segment_file tombstone_file index_dir ops_model faiss_import jpeg_dc)
targets=("${@:-${all[@]}}")
sanitizer=${FUZZ_SANITIZER:-address}
rss=${FUZZ_RSS_LIMIT_MB:-2048}
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is not installed: cargo install cargo-fuzz" >&2
    exit 2
fi

flags=(-O -a -s "$sanitizer")
echo "== building ${targets[*]} (sanitizer: $sanitizer)"
for t in "${targets[@]}"; do
    cargo fuzz build "${flags[@]}" "$t" || exit 2
done

echo "== writing the seed corpora (examples/make_seeds.rs)"
cargo run --release --quiet --example make_seeds || exit 2

failed=0
summary=()
mkdir -p logs
for t in "${targets[@]}"; do
    # 1. Replay the saved regression inputs: each must run clean.
    if compgen -G "regressions/$t/*" >/dev/null; then
        if cargo fuzz run "${flags[@]}" "$t" regressions/"$t"/* -- -rss_limit_mb="$rss" \
            >"logs/$t.regressions.log" 2>&1; then
            echo "== $t: regression inputs pass"
        else
            echo "== $t: A REGRESSION INPUT FAILS (see fuzz/logs/$t.regressions.log)"
            grep -m3 -E "panicked|ERROR: AddressSanitizer|ERROR: libFuzzer" "logs/$t.regressions.log" | sed 's/^/   /'
            failed=1
        fi
    fi
    # 2. Fuzz for $secs seconds from the seeds and what earlier runs found.
    mkdir -p "corpus/$t"
    dirs=("corpus/$t")
    [ -d "corpus-seeds/$t" ] && dirs+=("corpus-seeds/$t")
    # Structured targets need room for several operations from the start.
    extra=()
    case "$t" in
        index_dir | ops_model) extra=(-len_control=0 -max_len=2048) ;;
    esac
    echo "== $t: fuzzing for ${secs}s"
    if cargo fuzz run "${flags[@]}" "$t" "${dirs[@]}" -- -max_total_time="$secs" -rss_limit_mb="$rss" \
        -print_final_stats=1 "${extra[@]}" >"logs/$t.log" 2>&1; then
        status=ok
    else
        status="CRASHED (input saved under fuzz/artifacts/$t/, log fuzz/logs/$t.log)"
        grep -m3 -E "panicked|ERROR: AddressSanitizer|ERROR: libFuzzer" "logs/$t.log" | sed 's/^/   /'
        failed=1
    fi
    execs=$(grep -m1 -oE "stat::number_of_executed_units: *[0-9]+" "logs/$t.log" | grep -oE "[0-9]+$")
    [ -z "$execs" ] && execs=$(grep -oE "^#[0-9]+" "logs/$t.log" | tail -1 | tr -d '#')
    summary+=("$(printf '%-16s %12s executions in %ss: %s' "$t" "${execs:-?}" "$secs" "$status")")
done

echo
echo "== summary"
printf '%s\n' "${summary[@]}"
exit $failed
