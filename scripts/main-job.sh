#!/usr/bin/env bash
# The main job: a realistic shop workload through real workers, RabbitMQ and PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python -m devtools.workload "$@"
