#!/usr/bin/env bash
# Create .venv with a CPU build of torch (never a multi-GB CUDA build by accident),
# then install tvault-git in editable mode. Extra pip args go to the last install.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
pip -q install --upgrade pip >/dev/null 2>&1 || true
if ! python -c "import torch" 2>/dev/null; then
  # TORCH_SPEC lets other machines choose (e.g. a CUDA build); here 2.13.0 is a local CPU wheel.
  pip -q install "${TORCH_SPEC:-torch==2.13.0}" 2>&1 | grep -v "^WARNING: Location" || true
fi
log=$(mktemp)
if ! pip install -e ".$*" >"$log" 2>&1; then cat "$log"; echo "setup: pip install failed (log above)" >&2; exit 1; fi
rm -f "$log"
python -c "import tvault_git, torch, pygit2; print('tvault-git', tvault_git.__version__, '| torch', torch.__version__, '| pygit2', pygit2.__version__)"
