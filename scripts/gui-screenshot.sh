#!/usr/bin/env bash
# Starts the real reframe window under Xvfb with a generated clip queued (as "Open with" would),
# takes a screenshot of the screen into target/, and fails if it is blank.
#
# Usage: scripts/gui-screenshot.sh [OUTPUT.png]     (default: target/gui-screenshot.png)
# Env:   REFRAME_BIN (default target/debug/reframe, built if missing),
#        REFRAME_SHOT_DELAY seconds to wait before the screenshot (default 8),
#        REFRAME_SHOT_LOCALE the window's system locale (e.g. ja_JP.UTF-8: the Japanese UI),
#        REFRAME_SHOT_CLIP the queued clip's file name (default "sample clip.mp4").
# Needs: xvfb-run (xvfb, xauth), ImageMagick (import, identify), ffmpeg, Mesa GL (libgl1-mesa-dri).
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${REFRAME_BIN:-target/debug/reframe}
out=${1:-target/gui-screenshot.png}
delay=${REFRAME_SHOT_DELAY:-8}
mkdir -p "$(dirname "$out")"
if [ ! -x "$bin" ]; then
    cargo build --bin reframe
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
clip="$work/${REFRAME_SHOT_CLIP:-sample clip.mp4}"
# A chirp on the audio track, so the spectrogram under the timeline has something to show.
ffmpeg -v error -f lavfi -i testsrc=size=320x180:rate=24 \
    -f lavfi -i "aevalsrc=0.5*sin(2*PI*(200+2000*t)*t):s=48000" \
    -t 2 -pix_fmt yuv420p -c:a aac "$clip"
mkdir -p "$work/config" "$work/cache" "$work/run"
chmod 700 "$work/run"
export REFRAME_CONFIG_DIR="$work/config" REFRAME_CACHE_DIR="$work/cache" XDG_RUNTIME_DIR="$work/run"
# Only the window gets the locale: the shells here need not have it installed.
locale_env=()
if [ -n "${REFRAME_SHOT_LOCALE:-}" ]; then
    locale_env=(LANG="$REFRAME_SHOT_LOCALE" LC_ALL="$REFRAME_SHOT_LOCALE")
fi

xvfb-run -a -s '-screen 0 1280x800x24' bash -c '
    bin=$1 clip=$2 out=$3 work=$4 delay=$5
    shift 5
    env "$@" "$bin" "$clip" > "$work/gui.log" 2>&1 &
    pid=$!
    sleep "$delay"
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "the window exited early; its output:" >&2
        cat "$work/gui.log" >&2
        exit 1
    fi
    /usr/bin/import -window root "$out"
    kill "$pid"
    wait "$pid" || true
' screenshot "$bin" "$clip" "$out" "$work" "$delay" "${locale_env[@]}"

# A blank (or black) screen has a handful of colours; the window has many.
colours=$(identify -format %k "$out")
if [ "$colours" -lt 32 ]; then
    echo "the screenshot looks blank ($colours colours): $out" >&2
    exit 1
fi
echo "screenshot ok ($colours colours): $out"
