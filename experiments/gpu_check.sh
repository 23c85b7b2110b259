#!/usr/bin/env bash
# The GPU check in one call (experiments/gpu_check.py says what it runs and reports).
#
#   bash experiments/gpu_check.sh [OUT_DIR]      # report: OUT_DIR/gpu_check.md (default gpu_check/)
#   make gpu-check                               # the same
#
# Python: .venv/bin/python when the project's venv exists, else $PYTHON, else python3.
# Wheels: when .whl/ holds wheels (from /work/shared/gpu/wheels.sh --optuna) and Hydra is not
# importable, they are installed without a registry into $SITE (default $HOME/site):
#   pip install --no-index --no-deps --target $SITE .whl/*.whl
# Exit status: 0 report written; 2 no CUDA GPU (one line on stderr, nothing run); 1 install failed.
set -u
cd "$(dirname "$0")/.."
OUT_DIR="${1:-gpu_check}"
if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY="${PYTHON:-python3}"; fi
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  exec "$PY" -m experiments.gpu_check --out "$OUT_DIR/gpu_check.md"   # prints the one-line refusal
fi
if ls .whl/*.whl >/dev/null 2>&1 && ! "$PY" -c "import hydra" 2>/dev/null; then
  SITE="${SITE:-$HOME/site}"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl \
    || { echo "gpu-check: installing .whl/*.whl into $SITE failed" >&2; exit 1; }
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT_DIR"
exec "$PY" -m experiments.gpu_check --out "$OUT_DIR/gpu_check.md" ${GPU_CHECK_ARGS:-}
