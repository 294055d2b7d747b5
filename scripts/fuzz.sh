#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer through cargo fuzz) of the parsers that read what
# reframe does not write itself: ffprobe's JSON, ffmpeg's -progress lines, a session's
# progress.json and plan.json, preset files and ncnn .param/.bin models.
#
#   scripts/fuzz.sh TARGET [SECONDS]   fuzz one target (default 3600 s)
#   scripts/fuzz.sh all [SECONDS]      every target in turn
#
# Targets: probe_json progress_lines session_json preset_json ncnn_param. Seed inputs come
# from the repository's own fixtures; what the fuzzer finds lands in fuzz/artifacts/TARGET/
# (replay: cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/<file>). Needs the nightly
# toolchain and cargo-fuzz (installed here if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
targets=(probe_json progress_lines session_json preset_json ncnn_param)
target=${1:?"usage: scripts/fuzz.sh TARGET|all [SECONDS]; targets: ${targets[*]}"}
seconds=${2:-3600}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

seed() {
  local dir=fuzz/corpus/$1
  mkdir -p "$dir"
  case $1 in
    probe_json) cp src/media/testdata/probe/*.json "$dir"/ ;;
    progress_lines) cp src/media/testdata/progress/*.txt "$dir"/ ;;
    session_json) cp fuzz/seeds/session/*.json "$dir"/ ;;
    preset_json) cp presets/*.json "$dir"/ ;;
    ncnn_param)
      # The .param text, a NUL, then the first bytes of its weights.
      for p in target/models/*.param; do
        [ -e "$p" ] || continue
        { cat "$p"; printf '\0'; head -c 4096 "${p%.param}.bin"; } >"$dir/$(basename "$p")"
      done
      ;;
  esac
}

run() {
  seed "$1"
  # -rss_limit_mb: a model that asks for more memory than this is a finding too.
  (cd fuzz && cargo +nightly fuzz run -O "$1" "corpus/$1" -- \
    -max_total_time="$seconds" -rss_limit_mb=4096 -timeout=10)
}

if [ "$target" = all ]; then
  for t in "${targets[@]}"; do run "$t"; done
else
  run "$target"
fi
