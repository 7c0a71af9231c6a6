#!/usr/bin/env bash
# Install what the tests need (venv, test extras, system git tools) and run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh "[test]"
. .venv/bin/activate
export PATH="$PWD/.venv/bin:$PATH"
python -m pytest -q -p no:cacheprovider "$@"
