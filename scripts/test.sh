#!/usr/bin/env bash
# The whole test suite: the layer contracts (import-linter), lint (ruff) and types (mypy), then
# unit tests (StubBroker) and integration tests (real RabbitMQ, PostgreSQL).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/check.sh
exec .venv/bin/python -m pytest "$@"
