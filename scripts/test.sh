#!/usr/bin/env bash
# Sets up this machine and runs every check: lint, types, layering, the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/install-helm.sh
echo "== ruff";        .venv/bin/ruff check . && .venv/bin/ruff format --check .
echo "== mypy";        .venv/bin/mypy
echo "== layering";    PYTHONPATH=.typing .venv/bin/lint-imports
echo "== pytest";      .venv/bin/pytest -q "$@"
