"""The whole shopjobs middleware stack against bare Dramatiq, in the same run, alternating:
before and after durable sends ([10]).

Each round runs, in turn: bare Dramatiq (../shared/anchor-bench/bench_dramatiq.py, no-op actor,
confirms on, run with this project's interpreter so both sides use the same Dramatiq), the full
stack with durable sends (a job's sends committed with its outcome, then relayed: today's
stack), the full stack with direct sends (``SHOPJOBS_DURABLE_SENDS=0``: the stack before [10]),
then, with ``--sends``, both stacks again on jobs that each send one follow-up from inside the
job (where durable sends do their work: an outbox row and a relay publish instead of a
confirmed publish from the job's thread).

Prints each run's RESULT line, then the medians and the ratios (target >= 0.8 of bare, goal 0.9;
durable / direct must not fall below 1.0 by more than the noise).

``--before-tree DIR`` also runs the stack of another checkout (``git archive <commit> | tar -x
-C DIR``) in every round, for a before/after ratio of a change measured in the same run.

usage: python -m bench.ledger_overhead [--n 20000] [--rounds 3] [--sends] [--before-tree DIR]
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
DIRECT = {"SHOPJOBS_DURABLE_SENDS": "0"}
DEFAULT_DB = "postgresql+psycopg2://postgres@127.0.0.1:5432/shopjobs_bench"


def run(cmd: list[str], cwd: str, env: dict[str, str] | None = None) -> int:
    out = subprocess.run(
        cmd,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env={**os.environ, "SHOPJOBS_ANCHOR_BENCH": _anchor.ANCHOR_DIR, **(env or {})},
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
    ap.add_argument("--sends", action="store_true", help="also jobs that send one follow-up each")
    ap.add_argument("--before-tree", help="a checkout of the stack before a change")
    a = ap.parse_args()
    py = sys.executable
    shape = ["--processes", str(a.processes), "--threads", str(a.threads)]
    shop = [py, "-m", "bench.run_shopjobs", str(a.n), *shape]
    bare_cmd = [py, os.path.join(_anchor.ANCHOR_DIR, "bench_dramatiq.py"), str(a.n), *shape]
    runs: dict[str, list[int]] = {
        k: [] for k in ("bare", "durable", "direct", "durable_sends", "direct_sends", "before")
    }
    for _ in range(a.rounds):
        if a.before_tree:
            # a database of its own: the older tree's migrations do not know today's revisions
            before_db = os.environ.get("BENCH_SHOPJOBS_DB", DEFAULT_DB) + "_before"
            runs["before"].append(run(shop, a.before_tree, {"BENCH_SHOPJOBS_DB": before_db}))
        runs["bare"].append(run([*bare_cmd, "--confirm", "1"], _anchor.ANCHOR_DIR))
        runs["durable"].append(run(shop, _anchor.ROOT))
        runs["direct"].append(run(shop, _anchor.ROOT, DIRECT))
        if a.sends:
            runs["durable_sends"].append(run([*shop, "--sends"], _anchor.ROOT))
            runs["direct_sends"].append(run([*shop, "--sends"], _anchor.ROOT, DIRECT))
    med = {k: statistics.median(v) for k, v in runs.items() if v}
    names = {
        "bare": "bare_dramatiq",
        "durable": "shopjobs_full_stack_durable_sends",
        "direct": "shopjobs_full_stack_direct_sends",
        "durable_sends": "shopjobs_one_follow_up_durable_sends",
        "direct_sends": "shopjobs_one_follow_up_direct_sends",
        "before": "shopjobs_full_stack_before_tree",
    }
    for key, value in med.items():
        print(f"SUMMARY {names[key]} msgs_per_s median={value:.0f} runs={runs[key]}")

    def per_round(top: str, bottom: str) -> list[float]:
        return [round(x / y, 2) for x, y in zip(runs[top], runs[bottom], strict=True)]

    print(f"RATIO per round (durable/bare, same round) = {per_round('durable', 'bare')}")
    print(f"RATIO per round (direct/bare, same round) = {per_round('direct', 'bare')}")
    print(
        f"RATIO durable sends / bare of medians = {med['durable'] / med['bare']:.2f}"
        " (target >= 0.80, goal 0.90)"
    )
    print(f"RATIO direct sends / bare of medians = {med['direct'] / med['bare']:.2f} (before [10])")
    print(f"RATIO durable / direct of medians = {med['durable'] / med['direct']:.2f}")
    if a.before_tree:
        print(
            f"RATIO after / before (the tree) of medians = {med['durable'] / med['before']:.2f}"
            f" (per round {per_round('durable', 'before')}); before / bare ="
            f" {med['before'] / med['bare']:.2f}"
        )
    if a.sends:
        print(
            "RATIO one follow-up each, durable / direct of medians = "
            f"{med['durable_sends'] / med['direct_sends']:.2f} "
            f"(per round {per_round('durable_sends', 'direct_sends')})"
        )


if __name__ == "__main__":
    main()
