#!/usr/bin/env bash
# Runs every fuzz target for a bounded time: `fuzz/run.sh [SECONDS] [TARGET…]` (default 60 s
# each — CI-sized; give more locally). Needs a nightly toolchain and cargo-fuzz
# (`cargo install cargo-fuzz`); without them it says so and exits 0, since stable-only machines
# still replay the corpus and every reproducer in `cargo test` (tests/fuzz_corpus.rs).
# Findings land in fuzz/artifacts/TARGET/; the run's grown corpus in fuzz/corpus-run/TARGET/.
set -euo pipefail
cd "$(dirname "$0")"

seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(token token_screen clients_toml delegation_policy revocations_toml wire_requests)
fi

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    echo "fuzz/run.sh: no nightly toolchain (rustup toolchain install nightly); skipping"
    exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz/run.sh: cargo-fuzz is not installed (cargo install cargo-fuzz); skipping"
    exit 0
fi

failed=()
broken=()
for target in "${targets[@]}"; do
    mkdir -p "corpus-run/$target" "artifacts/$target"
    before=$(ls "artifacts/$target" | wc -l)
    echo "== $target: ${seconds} s"
    if ! cargo +nightly fuzz run "$target" "corpus-run/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1; then
        # A failure that left no new artifact is a build or set-up failure, not a finding.
        if [ "$(ls "artifacts/$target" | wc -l)" -gt "$before" ]; then
            failed+=("$target")
        else
            broken+=("$target")
        fi
    fi
done

if [ ${#broken[@]} -gt 0 ]; then
    echo "fuzz/run.sh: ${broken[*]} did not build or run (no artifact was written); see the output above"
fi
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz/run.sh: findings in ${failed[*]} (see fuzz/artifacts/); minimise with"
    echo "  cargo +nightly fuzz tmin TARGET FILE, then add the file to fuzz/artifacts-regressions/TARGET/"
    exit 1
fi
[ ${#broken[@]} -eq 0 ] || exit 1
echo "fuzz/run.sh: ${#targets[@]} target(s), ${seconds} s each, nothing found"
