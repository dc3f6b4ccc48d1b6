"""The whole shopjobs middleware stack against bare Dramatiq, in the same run, alternating.

Prints each run's RESULT line, then the medians and the ratio shopjobs / bare (target >= 0.8,
goal 0.9). Bare Dramatiq is ../shared/anchor-bench/bench_dramatiq.py (no-op actor, confirms on),
run with this project's interpreter so both sides use the same Dramatiq.

usage: python -m bench.ledger_overhead [--n 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys

from bench import _anchor

RESULT = re.compile(
    r"^RESULT .*? msgs_per_s=(\d+)", re.MULTILINE
)  # the drain rate, not enqueue_msgs_per_s


def run(cmd: list[str], cwd: str) -> int:
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900, check=False)
    sys.stdout.write(out.stdout)
    match = RESULT.search(out.stdout)
    if out.returncode != 0 or match is None:
        sys.stderr.write(out.stderr[-3000:])
        raise SystemExit(f"benchmark run failed: {' '.join(cmd)}")
    return int(match.group(1))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--threads", type=int, default=8)
    a = ap.parse_args()
    py = sys.executable
    shape = ["--processes", str(a.processes), "--threads", str(a.threads)]
    bare, ours = [], []
    for _ in range(a.rounds):
        bare.append(
            run(
                [
                    py,
                    os.path.join(_anchor.ANCHOR_DIR, "bench_dramatiq.py"),
                    str(a.n),
                    *shape,
                    "--confirm",
                    "1",
                ],
                _anchor.ANCHOR_DIR,
            )
        )
        ours.append(run([py, "-m", "bench.run_shopjobs", str(a.n), *shape], _anchor.ROOT))
    b, o = statistics.median(bare), statistics.median(ours)
    print(f"SUMMARY bare_dramatiq msgs_per_s median={b:.0f} runs={bare}")
    print(f"SUMMARY shopjobs_full_stack msgs_per_s median={o:.0f} runs={ours}")
    pairs = [round(x / y, 2) for x, y in zip(ours, bare)]
    print(f"RATIO per round (shopjobs/bare, same round) = {pairs}")
    print(f"RATIO shopjobs/bare of medians = {o / b:.2f} (target >= 0.80, goal 0.90)")


if __name__ == "__main__":
    main()
