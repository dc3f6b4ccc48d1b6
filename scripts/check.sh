#!/usr/bin/env bash
# Static checks, run by the test command before the tests: the import contracts that keep the
# layers pointing down, ruff, and mypy (non-strict, actor options typed through jobcore.routing).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== import contracts (import-linter)"
.venv/bin/lint-imports --no-cache
echo "== ruff check, ruff format --check (line length 100)"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy
