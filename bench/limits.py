"""The cost of a global limit per job: the same no-op job plain, holding a concurrency slot,
taking a rate token, drained by the same real worker group (2 x 8) in the same run.

Each round sends N jobs of each kind in turn and times until the ledger says all succeeded; the
limits are far above what 16 threads reach, so the figure is their cost, never a wait.

usage: python -m bench.limits [--n 1000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

DB_URL = os.environ.get(
    "BENCH_LIMITS_DB", "postgresql+psycopg2://postgres@127.0.0.1:5432/shopjobs_bench_limits"
)
VHOST = "shopjobs_bench_limits"
KINDS = ("bench.plain", "bench.slot", "bench.rated")


def _succeeded(actor: str) -> int:
    from sqlalchemy import text

    from jobcore.db import get_engine

    with get_engine().connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM job_ledger WHERE actor = :a AND state = 'succeeded'"),
                {"a": actor},
            ).scalar_one()
        )


def _drain(actor: object, name: str, n: int, done_before: int) -> float:
    started = time.monotonic()
    for i in range(n):
        actor.send(i)  # type: ignore[attr-defined]
    while _succeeded(name) < done_before + n:
        if time.monotonic() - started > 600:
            raise SystemExit(f"{name}: not drained after 600 s")
        time.sleep(0.05)
    return time.monotonic() - started


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    os.environ["SHOPJOBS_DATABASE_URL"] = DB_URL
    os.environ["SHOPJOBS_AMQP_URL"] = f"amqp://guest:guest@127.0.0.1:5672/{VHOST}"
    os.environ["SHOPJOBS_METRICS_PORT"] = "0"
    os.environ["SHOPJOBS_AMQP_HEARTBEAT"] = "0"
    os.environ.setdefault("SHOPJOBS_LOG_LEVEL", "WARNING")
    from devtools import devservices
    from devtools.processes import Worker
    from shop import dbadmin

    devservices.create_vhost(VHOST)
    dbadmin.create_database(DB_URL, recreate=True)
    dbadmin.migrate(DB_URL)
    from bench import limit_actors

    actors = {
        "bench.plain": limit_actors.plain,
        "bench.slot": limit_actors.slot,
        "bench.rated": limit_actors.rated,
    }
    # INFO: the supervisor's "worker group ready" line is what wait_ready looks for
    worker = Worker(
        ("bench.limit_actors",), processes=2, threads=8, env={"SHOPJOBS_LOG_LEVEL": "INFO"}
    )
    times: dict[str, list[float]] = {k: [] for k in KINDS}
    try:
        worker.wait_ready()
        for _ in range(a.rounds):
            for name in KINDS:
                times[name].append(_drain(actors[name], name, a.n, a.n * len(times[name])))
    finally:
        worker.stop()
        import broker

        broker.broker.close()
        from jobcore import db

        db.dispose_engine()
        dbadmin.drop_database(DB_URL)
        devservices.delete_vhost(VHOST)
    base = statistics.median(times["bench.plain"])
    for name in KINDS:
        t = statistics.median(times[name])
        extra_ms = (t - base) / a.n * 1000 * 16  # per job, in a thread's time (16 threads)
        print(
            f"SUMMARY {name} n={a.n} drain_s median={t:.2f} runs={[round(x, 2) for x in times[name]]}"
            f" ratio_to_plain={t / base:.2f} extra_ms_per_job_per_thread={extra_ms:.1f}"
        )


if __name__ == "__main__":
    main()
