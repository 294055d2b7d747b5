#!/usr/bin/env bash
# Resume, proven harder: tests/kill_anywhere.rs with 20 kills per test (or REFRAME_KILLS=N)
# at random instants across validate, upscale, package and verify, from the CLI and the
# window's worker, on the Lanczos and the neural path. REFRAME_KILL_SEED=S repeats a run.
# CI runs the same tests with 4 kills each.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --test
export REFRAME_KILLS="${REFRAME_KILLS:-20}"
exec cargo test --test kill_anywhere -- --nocapture --test-threads 1 "$@"
