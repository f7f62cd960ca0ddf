#!/usr/bin/env bash
# Create .venv and install pixelsplat-ns with its dev extra. Idempotent: a second run with nothing changed
# only checks that the pinned torch is present and that the package's dependencies are satisfied.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
TORCH_PINS=(torch==2.14.1 torchvision==0.29.1)

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
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
