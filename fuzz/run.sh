#!/usr/bin/env bash
# Runs every fuzz target (or those named) for SECONDS each (default 300), one at a time, at the lowest priority.
# New corpus entries go to fuzz/target/corpus/<target> (not committed); the committed seeds under fuzz/corpus/
# are read only. Needs nightly and cargo-fuzz (`cargo install cargo-fuzz --locked`).
set -euo pipefail
cd "$(dirname "$0")"
seconds="${SECONDS_PER_TARGET:-300}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo +nightly fuzz list)
fi
for target in "${targets[@]}"; do
    mkdir -p "target/corpus/$target" "logs"
    nice -n 19 cargo +nightly fuzz run -s none "$target" "target/corpus/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 2>&1 |
        tee "logs/$target.log" | grep -E "^(#[0-9]+ +(DONE|pulse)|Done|stat::|==[0-9]+== ERROR|SUMMARY)" || true
done
