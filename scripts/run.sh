#!/usr/bin/env bash
# Builds and starts reframe (the window; pass `run <video>` etc. for the command line).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
exec cargo run --release --quiet -- "$@"
