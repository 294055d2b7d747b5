#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, unit and integration tests (real ffmpeg,
# real binary, real window under Xvfb). Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --test
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
chmod 700 "$XDG_RUNTIME_DIR"
cargo fmt --all -- --check
cargo clippy --all-targets --quiet -- -D warnings
# The real window under Xvfb, started with a file to open; the screenshots are kept in
# target/: English, and Japanese (system locale) with a Japanese file name.
cargo build --bin reframe
scripts/gui-screenshot.sh target/gui-screenshot.png
REFRAME_SHOT_LOCALE=ja_JP.UTF-8 REFRAME_SHOT_CLIP="エピソード01 「テスト」.mp4" \
  scripts/gui-screenshot.sh target/gui-screenshot-ja.png
# The Debian package of that build: installed with apt, tried, removed.
scripts/deb-test.sh --profile dev
# A one-node Slurm cluster on this machine for tests/cluster_slurm.rs, stopped on the way out;
# with REFRAME_REQUIRE_SLURM those tests fail instead of skipping when it is not up.
slurm_started=$SECONDS
SLURM_CONF=$(scripts/slurm-cluster.sh start)
echo "test.sh: Slurm cluster up in $((SECONDS - slurm_started)) s" >&2
export SLURM_CONF REFRAME_REQUIRE_SLURM=1
trap 'scripts/slurm-cluster.sh stop >/dev/null 2>&1 || true' EXIT
log=$(mktemp)
set +e
cargo test --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line over every test binary.
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
rm -f "$log"
exit "$status"
