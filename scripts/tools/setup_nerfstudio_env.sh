#!/usr/bin/env bash
# The nerfstudio user's environment, for CI's second run: a Python 3.10 venv (.venv-nerfstudio) with torch 2.1.2
# and torchvision 0.16.2 from the package registry, every dependency at its declared floor
# (nerfstudio_env_floors.txt), and pixelsplat-ns installed non-editable, as `pip install <repository>` installs
# it for a user, plus the test tools. Idempotent: a second run only reinstalls the package from the tree.
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV=.venv-nerfstudio
FLOORS=scripts/tools/nerfstudio_env_floors.txt
if [ -z "${PYTHON310:-}" ]; then
    version=$(pyenv versions --bare 2>/dev/null | grep -E '^3\.10(\.|$)' | tail -1 || true)
    [ -n "$version" ] || { echo "setup_nerfstudio_env.sh: no Python 3.10 (pyenv install 3.10, or set PYTHON310)" >&2; exit 1; }
    PYTHON310="$(pyenv root)/versions/$version/bin/python"
fi

rm -rf build  # setuptools' in-tree build folder: a stale one would put modules removed since into the install
if [ ! -x $VENV/bin/python ]; then
    free_kb=$(df -Pk . | awk 'NR == 2 { print $4 }')  # torch 2.1.2 with its CUDA libraries is most of it
    if [ "$free_kb" -lt $((8 * 1024 * 1024)) ]; then
        echo "setup_nerfstudio_env.sh: $((free_kb / 1024 / 1024)) GB free on the disk of $PWD; $VENV needs about 8 GB: free some space and run it again" >&2
        exit 1
    fi
    "$PYTHON310" -m venv $VENV
fi
PY=$VENV/bin/python
stamp=$VENV/.dependencies-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ "$FLOORS" -nt "$stamp" ]; then
    "$PY" -m pip install --quiet --upgrade pip
    "$PY" -m pip install --quiet torch==2.1.2 torchvision==0.16.2 -c "$FLOORS"  # first: the user's torch
    "$PY" -m pip install --quiet . -c "$FLOORS"
    "$PY" -m pip install --quiet pytest pytest-timeout pytest-xdist "beartype>=0.18" e3nn -c "$FLOORS"
    touch "$stamp"
fi
"$PY" -m pip install --quiet --no-deps --force-reinstall .  # the tree as it is now, non-editable
"$PY" -m pip check
rm -rf build
(cd /tmp && "$OLDPWD/$PY" -c 'from pixelsplat_ns.fast_routes.numba_cache import warm_up
import pixelsplat_ns, torch
print(f"nerfstudio environment: torch {torch.__version__}, pixelsplat-ns from {pixelsplat_ns.__file__}; "
      f"numba kernels ready ({warm_up():.1f} s)")')
