"""The whole shopjobs middleware stack against bare Dramatiq, in the same run, alternating.

Prints each run's RESULT line, then the medians and the ratio shopjobs / bare (target >= 0.8,
goal 0.9). Bare Dramatiq is ../shared/anchor-bench/bench_dramatiq.py (no-op actor, confirms on),
run with this project's interpreter so both sides use the same Dramatiq.

``--before-tree DIR`` also runs the stack of another checkout (``git archive <commit> | tar -x
-C DIR``) in every round, for a before/after ratio measured in the same run.

usage: python -m bench.ledger_overhead [--n 20000] [--rounds 3] [--before-tree DIR]
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
    env = {**os.environ, "SHOPJOBS_ANCHOR_BENCH": _anchor.ANCHOR_DIR}
    out = subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, timeout=900, check=False, env=env
    )
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
    ap.add_argument("--before-tree", help="a checkout of the stack before a change")
    a = ap.parse_args()
    py = sys.executable
    shape = ["--processes", str(a.processes), "--threads", str(a.threads)]
    bare, ours, before = [], [], []
    for _ in range(a.rounds):
        if a.before_tree:
            before.append(run([py, "-m", "bench.run_shopjobs", str(a.n), *shape], a.before_tree))
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
    if before:
        m = statistics.median(before)
        print(f"SUMMARY before_tree msgs_per_s median={m:.0f} runs={before}")
        print(f"RATIO before/bare of medians = {m / b:.2f}; after/before = {o / m:.2f}")
        print(f"RATIO per round (after/before) = {[round(x / y, 2) for x, y in zip(ours, before)]}")
    print(f"RATIO shopjobs/bare of medians = {o / b:.2f} (target >= 0.80, goal 0.90)")


if __name__ == "__main__":
    main()
