#!/usr/bin/env bash
# Create .venv and install pixelsplat-ns with its dev extra. Idempotent: a second run with nothing changed
# only checks that the pinned torch is present and that the package's dependencies are satisfied.
set -euo pipefail
cd "$(dirname "$0")/../.."

PYTHON=${PYTHON:-python3}
TORCH_PINS=(torch==2.14.1 torchvision==0.29.1)

# System packages: libusb for open3d (imported by ns-export), ffmpeg for ns-render's videos, chromium for the
# viewer test, colmap for ns-process-data images (many photos), opencv-doc for OpenCV's sample photos that the
# pair tests measure against (a flat wall with its true homography, a calibrated webcam stereo rig). Installed
# with apt when missing and we are root; otherwise the command to run is printed.
SYSTEM_PACKAGES=(libusb-1.0-0 ffmpeg chromium colmap opencv-doc)
missing=()
for package in "${SYSTEM_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "setup.sh: missing system packages: ${missing[*]} (sudo apt-get install ${missing[*]})" >&2
    fi
fi

# Room for the environment (torch's build with its CUDA libraries is most of it), checked before pip would fail
# halfway with "No space left on device".
need_gb() {
    local free_kb
    free_kb=$(df -Pk . | awk 'NR == 2 { print $4 }')
    if [ "$free_kb" -lt $(($1 * 1024 * 1024)) ]; then
        echo "$(basename "$0"): $((free_kb / 1024 / 1024)) GB free on the disk of $PWD; $2 needs about $1 GB: free some space and run it again" >&2
        exit 1
    fi
}
[ -x .venv/bin/python ] || { need_gb 9 ".venv (Python packages with torch)"; "$PYTHON" -m venv .venv; }
PY=.venv/bin/python

# torch first, pinned: a bare "torch" requirement could otherwise pull a multi-GB build from the index.
if ! "$PY" -c 'import torch, torchvision, sys; sys.exit(torch.__version__.split("+")[0] != "2.14.1" or torchvision.__version__.split("+")[0] != "0.29.1")' 2>/dev/null; then
    "$PY" -m pip install --quiet "${TORCH_PINS[@]}"
fi

# The package and its dev extra; re-run only when pyproject.toml changed since the last install.
stamp=.venv/.pixelsplat-ns-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    "$PY" -m pip install --quiet -e ".[dev]" "${TORCH_PINS[@]}"
    touch "$stamp"
fi

# The numba kernels (the CPU renderer's, the encoder's full-resolution sum): compiled once here and kept in
# numba's disk cache, so that the demo, the viewer and the tests load them instead of each compiling them
# (docs/benchmarks.md has both times).
"$PY" -c 'from pixelsplat_ns.fast_routes.numba_cache import warm_up
print(f"numba kernels ready (renderer and encoder, {warm_up():.1f} s)")'
