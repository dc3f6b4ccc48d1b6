#!/usr/bin/env bash
# Puts promtool in .venv/bin when none is on PATH, for the tests that run `promtool check metrics`
# on a real worker's /metrics and `promtool check rules|config` on deploy/ (they look on PATH,
# then beside the venv's python). Only the binary is taken out of Debian's prometheus package
# (apt-get download, dpkg-deb): no Prometheus server is installed or started, and root is needed
# only when apt's package lists are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
target=.venv/bin/promtool
if command -v promtool >/dev/null 2>&1 || [ -x "$target" ]; then
  exit 0
fi
for tool in apt-get dpkg-deb; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "promtool is missing and $tool is not available: put Prometheus' promtool on PATH" >&2
    exit 1
  fi
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if ! (cd "$work" && apt-get download -qq prometheus >/dev/null 2>&1); then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
  fi
  echo "promtool: updating apt's package lists" >&2
  $SUDO apt-get update -qq
  (cd "$work" && apt-get download -qq prometheus >/dev/null)
fi
dpkg-deb --fsys-tarfile "$work"/prometheus_*.deb | tar -x -C "$work" ./usr/bin/promtool
mkdir -p "$(dirname "$target")"
install -m 0755 "$work/usr/bin/promtool" "$target"
echo "promtool installed: $target ($("$target" --version 2>&1 | head -1))" >&2
