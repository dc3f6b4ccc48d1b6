#!/usr/bin/env bash
# Installs promtool (Debian's prometheus package) when it is missing, for the tests that run
# `promtool check metrics` on a real worker's /metrics and `promtool check rules` on deploy/.
set -euo pipefail
if command -v promtool >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "promtool is missing and apt-get is not available: install Prometheus' promtool by hand" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y --no-install-recommends prometheus >/dev/null
# the package's service is not wanted here: only the promtool binary
command -v promtool >/dev/null
echo "promtool installed: $(promtool --version 2>&1 | head -1)" >&2
