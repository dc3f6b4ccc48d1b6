#!/usr/bin/env bash
# The whole test suite: unit tests (StubBroker) and integration tests (real RabbitMQ, PostgreSQL).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python -m pytest "$@"
