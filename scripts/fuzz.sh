#!/usr/bin/env bash
# Fuzz one of wgmlp's parsers for a given time: scripts/fuzz.sh TARGET SECONDS
# Targets: idx idx_gz csv checkpoint checkpoint_metadata cli_lists (see fuzz/checks.rs).
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). New inputs go to
# fuzz/work/TARGET (not committed); the committed seeds in fuzz/corpus/TARGET are only read.
# A crash is saved under fuzz/artifacts/TARGET: copy it to fuzz/regressions/TARGET/ so the
# normal test suite (tests/fuzz_regressions.rs) replays it forever.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
target=${1:?usage: scripts/fuzz.sh TARGET SECONDS}
seconds=${2:?usage: scripts/fuzz.sh TARGET SECONDS}
mkdir -p "work/$target" "corpus/$target"
# One job on one core; at most 2 GiB resident and no single allocation over 512 MiB (a
# header claiming billions of rows must fail before allocating them); inputs up to
# FUZZ_MAX_LEN bytes (default 4096, libFuzzer's own default: headers, rows and the seed
# checkpoints fit, and short inputs run fast).
exec cargo +nightly fuzz run "$target" "work/$target" "corpus/$target" -- \
    -max_total_time="$seconds" -jobs=1 -workers=1 \
    -rss_limit_mb=2048 -malloc_limit_mb=512 -max_len="${FUZZ_MAX_LEN:-4096}" -timeout=10 \
    -print_final_stats=1
