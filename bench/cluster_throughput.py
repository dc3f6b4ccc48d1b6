"""Throughput of the full stack on one RabbitMQ node against a 3-node cluster, in one run.

Quorum queues replicate every message to a majority of nodes and fsync it before confirming,
so they cost throughput; this measures how much, on private nodes started here (the machine's
node is left alone): a single node with classic queues (the baseline), the same node with
quorum queues, and a 3-node cluster with quorum queues. Each round runs every configuration in
turn (``bench.run_shopjobs``: N no-op jobs sent, then drained by P processes x 8 threads);
the table gives the median drain rate of each and its ratio to the baseline.

The single-process row gives the rate per worker process (for sizing, docs/sizing.md).

usage: python -m bench.cluster_throughput [--n 5000] [--rounds 3] [--processes 2]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile

from devtools.private.cluster import RabbitCluster
from devtools.private.rabbitmq import RabbitNode

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULT = re.compile(r"^RESULT .*msgs_per_s=(\d+)", re.MULTILINE)


def drain_rate(url: str, bench_url: str, queue_type: str, n: int, processes: int) -> float:
    """One ``bench.run_shopjobs`` run on ``url``; its drain rate in jobs/s."""
    env = {
        **os.environ,
        "SHOPJOBS_AMQP_URL": url,
        "BENCH_AMQP_URL": bench_url,
        "SHOPJOBS_QUEUE_TYPE": queue_type,
        "BENCH_SHOPJOBS_DB": "postgresql+psycopg2://postgres@127.0.0.1:5432/shopjobs_bench_cluster",
        "BENCH_SHOPJOBS_COUNTERS": os.path.join(tempfile.gettempdir(), "bench_counters_cluster"),
    }
    out = subprocess.run(
        [sys.executable, "-m", "bench.run_shopjobs", str(n), "--processes", str(processes)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    found = RESULT.search(out.stdout)
    if out.returncode != 0 or not found:
        raise RuntimeError(
            f"bench.run_shopjobs failed on {queue_type} {url}:\n{out.stderr[-2000:]}"
        )
    return float(found.group(1))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.cluster_throughput")
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--processes", type=int, default=2)
    args = ap.parse_args(argv)
    base = tempfile.mkdtemp(prefix="shopjobs-bench-nodes-")
    single = RabbitNode(os.path.join(base, "single"), f"shopjobs-bench-{os.getpid()}")
    cluster = RabbitCluster(os.path.join(base, "cluster"), prefix=f"shopjobs-bc{os.getpid()}")
    try:
        single.start(180)
        cluster.start()
        for vhost in ("classic", "quorum"):
            single.ctl("add_vhost", vhost)
            single.ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        cluster.add_vhost("quorum")
        configs = [
            ("1 node, classic queues", single.url("classic"), single.url("classic"), "classic", 0),
            (
                "1 node, classic queues, 1 process",
                single.url("classic"),
                single.url("classic"),
                "classic",
                1,
            ),
            ("1 node, quorum queues", single.url("quorum"), single.url("quorum"), "quorum", 0),
            (
                "3-node cluster, quorum queues",
                cluster.url("quorum"),
                cluster.nodes[0].url("quorum"),
                "quorum",
                0,
            ),
        ]
        rates: dict[str, list[float]] = {name: [] for name, *_ in configs}
        for round_no in range(1, args.rounds + 1):
            for name, url, bench_url, queue_type, processes in configs:
                rate = drain_rate(url, bench_url, queue_type, args.n, processes or args.processes)
                rates[name].append(rate)
                print(f"round {round_no}: {name}: {rate:,.0f} jobs/s", flush=True)
        baseline = statistics.median(rates[configs[0][0]])
        load = os.getloadavg()[0]
        print(
            f"\nfull stack, {args.n:,} no-op jobs, {args.processes} processes x 8 threads, "
            f"median of {args.rounds} alternating rounds (load average {load:.1f}):\n"
        )
        print("| configuration | jobs/s (median) | rounds | vs 1 node classic |")
        print("|---|---|---|---|")
        for name, *_ in configs:
            median = statistics.median(rates[name])
            rounds = ", ".join(f"{r:,.0f}" for r in rates[name])
            print(f"| {name} | {median:,.0f} | {rounds} | {median / baseline:.2f}x |")
        return 0
    finally:
        cluster.stop()
        single.stop()


if __name__ == "__main__":
    raise SystemExit(main())
