"""Locates ../shared/anchor-bench (the baselines) and puts its helpers on sys.path."""

from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ANCHOR_DIR = os.environ.get(
    "SHOPJOBS_ANCHOR_BENCH", os.path.join(os.path.dirname(ROOT), "shared", "anchor-bench")
)
if not os.path.isdir(ANCHOR_DIR):
    raise SystemExit(f"anchor benchmarks not found at {ANCHOR_DIR} (set SHOPJOBS_ANCHOR_BENCH)")
if ANCHOR_DIR not in sys.path:
    sys.path.insert(0, ANCHOR_DIR)
# the anchors write their workers' logs there and do not create it (a fresh machine has none)
os.makedirs("/tmp/bench_logs", exist_ok=True)


# The anchors' own venv (their README's set-up): Celery must not share the project's packages.
ANCHOR_VENV = os.environ.get("SHOPJOBS_ANCHOR_VENV", "/tmp/anchors-venv")
ANCHOR_PACKAGES = (
    "dramatiq[rabbitmq]==2.2.1",
    "pika==1.4.4",
    "psycopg2-binary==2.9.13",
    "celery>=5.3,<6",
)


def anchor_python() -> str:
    """The anchors' interpreter (``ANCHOR_PYTHON``), their venv made first when it is missing,
    so a fresh machine runs the Celery baseline without a manual step."""
    import subprocess

    explicit = os.environ.get("ANCHOR_PYTHON")
    if explicit:
        return explicit
    python = os.path.join(ANCHOR_VENV, "bin", "python")
    if not os.path.exists(os.path.join(ANCHOR_VENV, ".anchors-installed")):
        print(f"== creating the anchors' venv in {ANCHOR_VENV} (once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", ANCHOR_VENV], check=True)
        subprocess.run(
            [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *ANCHOR_PACKAGES],
            check=True,
        )
        open(os.path.join(ANCHOR_VENV, ".anchors-installed"), "w").close()
    return python
