#!/usr/bin/env bash
# Installs the system packages reframe needs, if any is missing (Debian/Ubuntu, apt).
#   scripts/deps.sh          what the app needs at run time: ffmpeg, mkvtoolnix, window libraries,
#                            fontconfig and a font for Japanese, Chinese and Korean text
#   scripts/deps.sh --test   plus what the test suite needs: Xvfb, xauth, ImageMagick, Mesa's
#                            software Vulkan/GL drivers, Python's venv, desktop-file-utils (the
#                            package test), Slurm and munge (scripts/slurm-cluster.sh), and
#                            then the neural models and the onnxruntime reference
#                            (scripts/fetch-models.sh)
set -euo pipefail

packages=(ffmpeg mkvtoolnix libvulkan1 mesa-vulkan-drivers libgl1-mesa-dri libegl1 libegl-mesa0
          libxkbcommon-x11-0 libxcursor1 libxrandr2 libxi6 libfontconfig1 fonts-noto-cjk)
if [[ "${1:-}" == "--test" ]]; then
  packages+=(xvfb xauth imagemagick xdotool python3 python3-venv python3-pip desktop-file-utils
             slurmctld slurmd slurm-client munge)
fi

fetch_models() {
  if [[ "${1:-}" == "--test" ]]; then
    "$(dirname "$0")/fetch-models.sh" --python
  fi
}

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  fetch_models "$@"
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "reframe needs these packages, and this system has no apt-get: ${missing[*]}" >&2
  echo "install them with your package manager (ffmpeg provides ffmpeg and ffprobe)" >&2
  exit 1
fi
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  sudo="sudo"
fi
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fetch_models "$@"
