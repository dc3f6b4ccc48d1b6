"""Every benchmark of the project in one run, and one table of ratios against the goals of [12].

1. Drain: no-op jobs, 2 processes x 8 threads, N messages, ``--rounds`` alternating rounds of
   bare Dramatiq (../shared/anchor-bench/bench_dramatiq.py, confirms on, this interpreter),
   the shopjobs full stack (``bench.run_shopjobs``) and Celery prefork c2 (acks_late; the
   anchors' own venv, ``ANCHOR_PYTHON``, else /tmp/anchors-venv, made on first use). Ratios of the
   medians, and per round.
2. Enqueue: a service's N sends through the outbox and the relay, first commit to last
   confirm, against Dramatiq's confirmed ``enqueue`` (``bench.relay_rate``, alternating).
3. Latency from enqueue to start at a steady 500 msgs/s, the stack against bare Dramatiq
   (``bench.latency``, alternating).
4. The ledger at scale (``bench.ledger_scale --rows R``).
5. Worker RSS over many jobs (``bench.rss --jobs J``).

usage: python -m bench.all [--rounds 5] [--n 20000] [--ledger-rows 10000000]
                           [--rss-jobs 100000] [--only drain,enqueue,latency,ledger,rss]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys

from bench import _anchor

FIELD = re.compile(r"(\S+?)=(\S+)")


def run(cmd: list[str], cwd: str, timeout: int = 3600) -> str:
    """Run a benchmark, echo its RESULT/GOAL/SUMMARY lines, return its whole output."""
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    for line in out.stdout.splitlines():
        if line.startswith(("RESULT", "GOAL", "SUMMARY")):
            print("   ", line, flush=True)
    if out.returncode != 0:
        sys.stderr.write(out.stdout[-2000:] + out.stderr[-3000:])
        raise SystemExit(f"benchmark failed: {' '.join(cmd)}")
    return out.stdout


def fields(output: str, prefix: str, name: str | None = None) -> dict[str, str]:
    """The fields of the last ``prefix`` line (whose name= starts with ``name``, if given)."""
    found: dict[str, str] = {}
    for line in output.splitlines():
        if line.startswith(prefix + " "):
            parsed = dict(FIELD.findall(line[len(prefix) + 1 :]))
            if name is None or parsed.get("name", "").startswith(name):
                found = parsed
    if not found:
        raise SystemExit(f"no {prefix} {name or ''} line in a benchmark's output")
    return found


def drain(rounds: int, n: int) -> list[tuple[str, str, str, str, str]]:
    py, shape = sys.executable, ["--processes", "2", "--threads", "8"]
    bare, ours, celery = [], [], []
    for k in range(rounds):
        print(f"== drain round {k + 1}/{rounds} (N={n})", flush=True)
        out = run(
            [
                py,
                os.path.join(_anchor.ANCHOR_DIR, "bench_dramatiq.py"),
                str(n),
                *shape,
                "--confirm",
                "1",
            ],
            _anchor.ANCHOR_DIR,
        )
        bare.append(float(fields(out, "RESULT")["msgs_per_s"]))
        out = run([py, "-m", "bench.run_shopjobs", str(n), *shape], _anchor.ROOT)
        ours.append(float(fields(out, "RESULT")["msgs_per_s"]))
        out = run(
            [
                _anchor.anchor_python(),
                os.path.join(_anchor.ANCHOR_DIR, "bench_celery.py"),
                str(n),
                "--concurrency",
                "2",
                "--prefetch-mult",
                "4",
            ],
            _anchor.ANCHOR_DIR,
        )
        celery.append(float(fields(out, "RESULT")["msgs_per_s"]))
    b, o, c = (statistics.median(x) for x in (bare, ours, celery))
    per_bare = [round(x / y, 2) for x, y in zip(ours, bare, strict=True)]
    per_celery = [round(x / y, 2) for x, y in zip(ours, celery, strict=True)]
    print(f"   drain msgs/s: bare {bare}, shopjobs {ours}, celery {celery}", flush=True)
    return [
        (
            f"drain vs bare Dramatiq (median of {rounds}; per round {per_bare})",
            f"{o:.0f} msgs/s",
            f"{b:.0f} msgs/s",
            f"{o / b:.2f}x",
            ">= 0.9x",
        ),
        (
            f"drain vs Celery prefork c2 (median of {rounds}; per round {per_celery})",
            f"{o:.0f} msgs/s",
            f"{c:.0f} msgs/s",
            f"{o / c:.2f}x",
            ">= 3x",
        ),
    ]


def enqueue(rounds: int, n: int) -> list[tuple[str, str, str, str, str]]:
    print(f"== enqueue through the outbox and relay (N={n})", flush=True)
    out = run(
        [sys.executable, "-m", "bench.relay_rate", "--n", str(n), "--rounds", str(rounds)],
        _anchor.ROOT,
    )
    by_name = {}
    for line in out.splitlines():
        if line.startswith("SUMMARY "):
            by_name[line.split()[1]] = dict(FIELD.findall(line))
    theirs = float(by_name["dramatiq_confirmed_enqueue"]["median"])
    ours = by_name["outbox_service_relay"]
    o = float(ours["median"])
    return [
        (
            (
                f"enqueue: outbox + relay, {ours['per_tx']} sends per commit, first commit to last"
                f" confirm (median of {rounds}) vs Dramatiq's confirmed enqueue"
            ),
            f"{o:.0f} msgs/s",
            f"{theirs:.0f} msgs/s",
            f"{o / theirs:.1f}x",
            ">= 5x",
        )
    ]


def latency(rounds: int) -> list[tuple[str, str, str, str, str]]:
    print("== latency from enqueue to start at 500 msgs/s", flush=True)
    out = run([sys.executable, "-m", "bench.latency", "--rounds", str(rounds)], _anchor.ROOT)
    s = fields(out, "SUMMARY")
    return [
        (
            f"enqueue-to-start p50 at 500 msgs/s (median of {rounds})",
            f"{float(s['shop_p50_ms']):.1f} ms",
            f"{float(s['bare_p50_ms']):.1f} ms",
            f"{float(s['p50_ratio']):.2f}x",
            "<= 1.5x",
        ),
        (
            f"enqueue-to-start p99 at 500 msgs/s (median of {rounds})",
            f"{float(s['shop_p99_ms']):.1f} ms",
            f"{float(s['bare_p99_ms']):.1f} ms",
            f"{float(s['p99_ratio']):.2f}x",
            "(reported)",
        ),
    ]


def ledger(rows: int) -> list[tuple[str, str, str, str, str]]:
    print(f"== ledger at scale ({rows:,} rows)", flush=True)
    out = run(
        [sys.executable, "-m", "bench.ledger_scale", "--rows", str(rows)],
        _anchor.ROOT,
        timeout=7200,
    )
    s = {
        k: float(v)
        for k, v in fields(out, "SUMMARY").items()
        if k not in ("ledger_scale",) and re.fullmatch(r"[-\d.]+|nan", v)
    }

    def row(what: str, key: str, goal: float) -> tuple[str, str, str, str, str]:
        return (
            what,
            f"{s[key]:.2f} ms",
            f"goal {goal:g} ms",
            f"{s[key] / goal:.2f} of goal",
            "< 1",
        )

    return [
        row("ledger lookup by message id p99 (client, ORM)", "by_id_p99_ms", 2),
        row("ledger lookup by message id p99 (in PostgreSQL)", "server_by_id_p99_ms", 2),
        row("ledger lookup by order p99 (client, ORM)", "by_order_p99_ms", 5),
        row("ledger lookup by order p99 (in PostgreSQL)", "server_by_order_p99_ms", 5),
        row("jobs list --state failed --since 2h p99", "list_p99_ms", 200),
        row(
            f"writers' p99 while pruning {int(s['pruned']):,} rows ({s['prune_s']:.0f} s)",
            "writers_p99_ms",
            50,
        ),
    ]


def rss(jobs: int) -> list[tuple[str, str, str, str, str]]:
    print(f"== worker RSS over {jobs:,} jobs", flush=True)
    out = run(
        [
            sys.executable,
            "-m",
            "bench.rss",
            "--jobs",
            str(jobs),
            "--every",
            str(max(1000, jobs // 20)),
            "--warmup",
            str(jobs // 10),
        ],
        _anchor.ROOT,
    )
    r = fields(out, "RESULT", "worker_rss_growth")
    growth = float(r["growth_pct_max"])
    return [
        (
            f"worker RSS growth after warm-up ({jobs:,} jobs)",
            f"{r['rss_after_warmup_mib']} -> {r['rss_end_mib']} MiB",
            "goal 5 %",
            f"{growth:.2f} %",
            "< 5 %",
        )
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--ledger-rows", type=int, default=10_000_000)
    ap.add_argument("--rss-jobs", type=int, default=100_000)
    ap.add_argument("--only", default="drain,enqueue,latency,rss,ledger")
    ap.add_argument("--other-rounds", type=int, default=3, help="rounds of enqueue and latency")
    a = ap.parse_args()
    parts = set(a.only.split(","))
    table: list[tuple[str, str, str, str, str]] = []
    steps = (
        ("drain", lambda: drain(a.rounds, a.n)),
        ("enqueue", lambda: enqueue(a.other_rounds, a.n)),
        ("latency", lambda: latency(a.other_rounds)),
        ("rss", lambda: rss(a.rss_jobs)),
        ("ledger", lambda: ledger(a.ledger_rows)),
    )
    for name, step in steps:
        if name in parts:
            try:
                table += step()
            except SystemExit as exc:  # one part failing leaves the others' figures
                table.append((f"{name}: FAILED ({exc})", "-", "-", "-", "-"))
    header = ("measure", "shopjobs", "baseline", "ratio", "goal")
    widths = [max(len(str(r[i])) for r in [header, *table]) for i in range(5)]
    print()
    for r in [header, tuple("-" * w for w in widths), *table]:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) + " |")
    if "drain" in parts:
        print(
            "\nThe drain is the stack with durable sends ([10]); bench.ledger_overhead also runs it with direct sends."
        )


if __name__ == "__main__":
    main()
