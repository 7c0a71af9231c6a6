#!/usr/bin/env bash
# Set up .venv (CPU torch, tvault-git) and run the demo in a temporary git repository.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python examples/demo.py
