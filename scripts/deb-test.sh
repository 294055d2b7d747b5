#!/usr/bin/env bash
# Builds the Debian package, installs it as a user would (apt-get install ./reframe….deb),
# checks the installed program and its desktop entry, then removes the package again.
#
# Usage: scripts/deb-test.sh [--profile release|dev]   (as root, or with sudo; default dev:
#        the test suite's own build, so CI does not build a second profile)
# Needs: what scripts/deb.sh needs, apt-get, desktop-file-validate (desktop-file-utils), ffmpeg.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=dev
[[ "${1:-}" == "--profile" ]] && profile=${2:?--profile needs release or dev}
sudo=""
[[ $(id -u) -ne 0 ]] && sudo="sudo"
if dpkg-query -W -f='${Status}' reframe 2>/dev/null | grep -q "install ok installed"; then
  echo "a reframe package is installed already; remove it first (apt-get remove reframe)" >&2
  exit 1
fi

deb=$(scripts/deb.sh --profile "$profile" | tail -n 1)
echo "built $deb ($(du -h "$deb" | cut -f1))"
desktop-file-validate packaging/reframe.desktop

work=$(mktemp -d)
cleanup() {
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq reframe >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$PWD/$deb" >/dev/null

# What the package put where.
[[ -x /usr/bin/reframe ]] || { echo "/usr/bin/reframe is missing" >&2; exit 1; }
desktop-file-validate /usr/share/applications/reframe.desktop
for size in 16 32 48 128 256 512; do
  icon=/usr/share/icons/hicolor/${size}x${size}/apps/reframe.png
  [[ "$(identify -format %wx%h "$icon")" == "${size}x${size}" ]] || { echo "bad icon $icon" >&2; exit 1; }
done
grep -q '^MimeType=.*video/mp4;' /usr/share/applications/reframe.desktop

# The installed program works: its version, and a job on a clip with a Japanese name.
installed=$(/usr/bin/reframe --version)
expected="reframe $(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)"
[[ "$installed" == "$expected" ]] || { echo "reframe --version says '$installed', not '$expected'" >&2; exit 1; }
clip="$work/エピソード01 「テスト」.mp4"
ffmpeg -v error -f lavfi -i testsrc=size=160x120:rate=24 -t 1 -pix_fmt yuv420p "$clip"
mkdir -p "$work/config" "$work/cache"
REFRAME_CONFIG_DIR="$work/config" REFRAME_CACHE_DIR="$work/cache" \
  /usr/bin/reframe run "$clip" --scale 2 --preset h264_hq -o "$work/out"
out="$work/out/エピソード01 「テスト」.2x.mp4"
frames=$(ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames,width -of csv=p=0 "$out")
[[ "$frames" == "320,24" ]] || { echo "unexpected output (width,frames): $frames" >&2; exit 1; }
echo "deb ok: $installed installed, ran a job, removed"
