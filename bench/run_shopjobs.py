"""One run of the shopjobs stack on a no-op actor: enqueue N, then time 2x8 workers draining them.

Measured exactly as ../shared/anchor-bench/bench_dramatiq.py measures bare Dramatiq (per-process
completion counters; drain = last completion - first completion), plus a check that the
ledger holds N succeeded rows when the drain ends (acks wait for the ledger, so it must).

``--sends``: each of the N jobs sends one follow-up from inside the job (2N completions timed);
``SHOPJOBS_DURABLE_SENDS=0`` in the environment publishes them from the job as Dramatiq does
instead of committing them with the job's outcome for the relay.

usage: python -m bench.run_shopjobs N [--processes 2] [--threads 8] [--sends]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from bench import _anchor

ROOT = _anchor.ROOT
COUNTERS = os.environ.get("BENCH_SHOPJOBS_COUNTERS", "/tmp/bench_counters/shopjobs")
DB_URL = os.environ.get(
    "BENCH_SHOPJOBS_DB", "postgresql+psycopg2://postgres@127.0.0.1:5432/shopjobs_bench"
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", type=int)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--sends", action="store_true", help="each job sends one follow-up")
    a = ap.parse_args()
    total = 2 * a.n if a.sends else a.n

    os.environ["SHOPJOBS_DATABASE_URL"] = DB_URL
    os.environ["BENCH_COUNTER_DIR"] = COUNTERS
    os.environ.setdefault("SHOPJOBS_LOG_LEVEL", "WARNING")
    from benchlib import clear_counters, depth, purge, result, stop_proc, wait_depth, wait_drained

    from shop import dbadmin

    dbadmin.create_database(DB_URL)
    dbadmin.migrate(DB_URL)
    clear_counters(COUNTERS)
    purge("bench_shop", "bench_shop.DQ", "bench_shop.XQ")
    import psycopg2

    pg = psycopg2.connect(DB_URL.replace("+psycopg2", ""))
    pg.autocommit = True
    cur = pg.cursor()
    cur.execute("TRUNCATE job_ledger, outbox")

    import broker
    from bench import shop_actors

    t0 = time.perf_counter()
    first_actor = shop_actors.hand_on if a.sends else shop_actors.noop
    for i in range(a.n):
        first_actor.send(i, "order.confirmation")
    enq = time.perf_counter() - t0
    broker.flush_ledger()
    broker.broker.close()
    d = wait_depth("bench_shop", a.n)
    assert d == a.n, f"queue depth {d} != {a.n}"

    cmd = [
        os.path.join(os.path.dirname(sys.executable), "dramatiq"),
        "bench.shop_actors",
        "--processes",
        str(a.processes),
        "--threads",
        str(a.threads),
        "--queues",
        "bench_shop",
        "--worker-shutdown-timeout",
        "15000",
    ]
    os.makedirs("/tmp/bench_logs", exist_ok=True)
    with open("/tmp/bench_logs/shopjobs_worker.log", "w") as log:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    t_start = time.time()
    try:
        first, last, cpu = wait_drained(COUNTERS, total, proc)
        cur.execute("SELECT count(*) FROM job_ledger WHERE state = 'succeeded' AND attempts = 1")
        ok_at_drain = cur.fetchone()[0]
    finally:
        stop_proc(proc)
    cur.execute("SELECT count(*) FROM job_ledger WHERE state = 'succeeded'")
    ok = cur.fetchone()[0]
    if broker.settings.ledger_enabled:
        assert ok == total, f"ledger shows {ok}/{total} succeeded"
    sends = ("durable" if broker.settings.durable_sends else "direct") + "_sends"
    result(
        f"shopjobs_full_stack_p{a.processes}t{a.threads}_confirm1_{sends}"
        + ("_one_follow_up" if a.sends else ""),
        total,
        last - first,
        enqueue_s=enq,
        enqueue_msgs_per_s=round(a.n / enq),
        startup_s=first - t_start,
        remaining_depth=depth("bench_shop"),
        ledger_succeeded_at_drain=ok_at_drain,
        **cpu,
    )


if __name__ == "__main__":
    main()
