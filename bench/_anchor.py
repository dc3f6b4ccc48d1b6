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
