#!/usr/bin/env bash
# Install what the tests need (venv, test extras, chromium for the browser tests) and run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh "[test]"
bash scripts/browser.sh   # Debian chromium for tests/test_web.py (skipped when unavailable)
. .venv/bin/activate
export PATH="$PWD/.venv/bin:$PATH"
# Gates first (seconds): lint, format, the layer contract runs inside pytest (tests/test_layers.py).
ruff check --quiet .
ruff format --check --quiet .
python -m pytest -q -p no:cacheprovider "$@"
