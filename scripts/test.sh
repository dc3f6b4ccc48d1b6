#!/usr/bin/env bash
# The whole test suite: the layer contracts (import-linter), lint (ruff) and types (mypy), then
# unit tests (StubBroker) and integration tests (real RabbitMQ, PostgreSQL). It installs and starts
# what the tests need (the venv, PostgreSQL, RabbitMQ, promtool), so every test runs: a test that
# still skips fails the run (tests/support/every_test_runs.py).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/install-promtool.sh
bash scripts/check.sh
exec .venv/bin/python -m pytest -p tests.support.every_test_runs "$@"
