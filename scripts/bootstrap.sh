#!/usr/bin/env bash
# Creates .venv and installs the project at the pinned versions (constraints.txt), once per change
# of pyproject.toml or constraints.txt; then starts PostgreSQL and RabbitMQ if they are stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.shopjobs-installed
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/pip install -q --disable-pip-version-check -c constraints.txt -e '.[test]' 2>&1 \
    | grep -v "is ignored: it is neither a file nor a directory" || true
  .venv/bin/python -c "import dramatiq, sqlalchemy, alembic, structlog, pytest" 
  echo "$want" > "$stamp"
fi
.venv/bin/python -m devtools.devservices
