"""The job ledger at scale: N rows (COPY), then the lookups operators make and a prune under load.

Builds a database of its own (dropped and re-created each run), migrates it, and COPYs N
ledger rows spread over the last ~33 days (10 % of them older than 30 days, so a 30-day prune
removes N/10: 1 M at the default 10 M), with the shape of the shop's ledger: ~60 % of jobs
concern an order (8 jobs per order), ~3 % failed or dead. Indexes are dropped for the COPY and
rebuilt after it (as one restores a dump), then the table is vacuumed and analysed. Then:

- p50/p99 of 1,000 lookups by message id (``jobs show``; goal p99 < 2 ms) and by order
  (``jobs order``; goal < 5 ms), each in a read-only session of its own (``db.read_scope``, as
  the commands use), random ids, through the
  project's query functions (client side), and the same statements timed by PostgreSQL
  itself (planning + execution: the index's share, apart from Python and scheduling);
- ``jobs list --state failed --since 2h``'s query (goal < 200 ms), repeated, and the command
  itself once as a process (Python's start-up included);
- the 30-day prune (``shop.ops.maintenance.prune_job_ledger``) while 2 ledger writers (as 2
  worker processes, 8 threads each, ~500 jobs/s) record jobs and wait for their commit as acks
  do: the writers' p99 before and during the prune (goal < 50 ms).

Prints RESULT lines and a verdict per goal. Run the 10 M size once: it takes a while here.

usage: python -m bench.ledger_scale [--rows 10000000] [--lookups 1000] [--explain]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from bench import _anchor

DB_URL = os.environ.get(
    "BENCH_LEDGER_SCALE_DB", "postgresql+psycopg2://postgres@127.0.0.1:5432/shopjobs_ledger_scale"
)
SPAN_S = 30 * 86400 / 0.9  # 10 % of the rows older than 30 days
PRUNE_DAYS = 30
ACTORS = [
    (f"{domain}.{verb}", queue)
    for domain, queue in (
        ("orders", "orders"),
        ("payments", "payments"),
        ("inventory", "inventory"),
        ("notifications", "notifications"),
        ("reports", "reports"),
        ("media", "media"),
        ("ops", "maintenance"),
    )
    for verb in ("validate", "charge", "reserve", "send", "build", "sync")
]
STATES = (
    ("succeeded", 0.95),
    ("failed", 0.02),
    ("dead", 0.01),
    ("skipped", 0.01),
    ("cancelled", 0.01),
)
COPY_COLUMNS = (
    "message_id",
    "actor",
    "queue",
    "state",
    "state_changed_at",
    "args",
    "attempts",
    "enqueued_at",
    "started_at",
    "finished_at",
    "error",
    "traceback",
    "order_id",
    "user_id",
    "worker",
)
TRACEBACK = (
    'Traceback (most recent call last):\\n  File \\"shop/payments/charge.py\\", line 88,'
    " in charge\\n    raise ProviderUnavailable(status)\\nProviderUnavailable: 503"
)


def _ts(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat()


class _Rows(io.RawIOBase):
    """A file COPY reads: text-format rows generated on demand, ids sampled for the lookups."""

    def __init__(self, n: int, seed: int, sample: int) -> None:
        self.n, self.i = n, 0
        self.rng = random.Random(seed)
        self.now = time.time()
        self.orders = max(1, int(n * 0.6 / 8))
        self.every = max(1, n // sample)
        self.sampled_ids: list[str] = []
        self.buffer = b""
        cumulative, self.state_cut = 0.0, []
        for state, share in STATES:
            cumulative += share
            self.state_cut.append((cumulative, state))

    def readable(self) -> bool:
        return True

    def _chunk(self, count: int) -> bytes:
        rng, lines = self.rng, []
        for _ in range(min(count, self.n - self.i)):
            mid = f"{rng.getrandbits(128):032x}"
            mid = f"{mid[:8]}-{mid[8:12]}-{mid[12:16]}-{mid[16:20]}-{mid[20:]}"
            if self.i % self.every == 0:
                self.sampled_ids.append(mid)
            self.i += 1
            actor, queue = ACTORS[rng.randrange(len(ACTORS))]
            changed = self.now - rng.random() * SPAN_S
            draw = rng.random()
            state = next(s for cut, s in self.state_cut if draw <= cut)
            order = rng.randrange(1, self.orders + 1) if rng.random() < 0.6 else None
            failed = state in ("failed", "dead")
            lines.append(
                "\t".join(
                    (
                        mid,
                        actor,
                        queue,
                        state,
                        _ts(changed),
                        f'{{"order_id": {order or 0}}}',
                        "3" if failed else "1",
                        _ts(changed - 0.5),
                        _ts(changed - 0.05),
                        _ts(changed),
                        "ProviderUnavailable: 503" if failed else "\\N",
                        TRACEBACK if failed else "\\N",
                        str(order) if order else "\\N",
                        str(rng.randrange(1, 200_000)) if rng.random() < 0.3 else "\\N",
                        "worker-1:4242",
                    )
                )
            )
        return ("\n".join(lines) + "\n").encode() if lines else b""

    def readinto(self, b: Any) -> int:
        while len(self.buffer) < len(b) and self.i < self.n:
            self.buffer += self._chunk(2000)
        size = min(len(b), len(self.buffer))
        b[:size] = self.buffer[:size]
        self.buffer = self.buffer[size:]
        return size


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _ms(values: list[float]) -> str:
    return f"p50_ms={_pct(values, 0.5) * 1000:.2f} p99_ms={_pct(values, 0.99) * 1000:.2f}"


def load(cur: Any, rows: int, sample: int) -> list[str]:
    """COPY ``rows`` rows into an index-less job_ledger, then rebuild its indexes."""
    cur.execute("""SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
                   WHERE conrelid = 'job_ledger'::regclass AND contype IN ('p', 'u')""")
    keys = cur.fetchall()
    cur.execute("""SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'job_ledger'
                   AND indexname NOT IN (SELECT conname FROM pg_constraint
                                         WHERE conrelid = 'job_ledger'::regclass)""")
    indexes = cur.fetchall()
    for name, _ in indexes:
        cur.execute(f'DROP INDEX "{name}"')
    for name, _ in keys:
        cur.execute(f'ALTER TABLE job_ledger DROP CONSTRAINT "{name}"')
    source = _Rows(rows, seed=12, sample=sample)
    t0 = time.perf_counter()
    cur.copy_expert(
        f"COPY job_ledger ({', '.join(COPY_COLUMNS)}) FROM STDIN",
        io.BufferedReader(source, 1 << 20),
    )
    t1 = time.perf_counter()
    cur.execute("SET maintenance_work_mem = '512MB'")
    for name, definition in keys:
        cur.execute(f'ALTER TABLE job_ledger ADD CONSTRAINT "{name}" {definition}')
    for _, definition in indexes:
        cur.execute(definition)
    t2 = time.perf_counter()
    cur.execute("VACUUM ANALYZE job_ledger")
    t3 = time.perf_counter()
    cur.execute("SELECT pg_size_pretty(pg_total_relation_size('job_ledger'))")
    size = cur.fetchone()[0]
    print(
        f"RESULT name=ledger_scale_load rows={rows} copy_s={t1 - t0:.1f} "
        f"index_s={t2 - t1:.1f} vacuum_analyze_s={t3 - t2:.1f} table_and_indexes={size}",
        flush=True,
    )
    return source.sampled_ids


def timed(fn: Callable[[], Any], times: int) -> list[float]:
    out = []
    for _ in range(times):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


class Writers:
    """Ledger writers as worker processes use them: record a job's start and end, wait for the
    commit of the end (an ack waits for it); the latency of that wait, per job."""

    def __init__(self, dsn: str, processes: int = 2, threads: int = 8, rate: float = 500) -> None:
        from jobcore.ledger.writer import LedgerWriter, connect_psycopg

        self.writers = [LedgerWriter(connect_psycopg(dsn)) for _ in range(processes)]
        self.period = processes * threads / rate
        self.threads = [
            threading.Thread(target=self._run, args=(w,), daemon=True)
            for w in self.writers
            for _ in range(threads)
        ]
        self.stop = threading.Event()
        self.samples: list[tuple[float, float]] = []  # (when, latency)
        self.lock = threading.Lock()

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def _run(self, writer: Any) -> None:
        from jobcore.ledger.states import State
        from jobcore.ledger.writer import Change

        rng = random.Random()
        while not self.stop.is_set():
            began = time.time()
            mid = f"w-{rng.getrandbits(128):032x}"
            writer.record(
                Change(
                    mid,
                    "orders.validate",
                    "orders",
                    State.RUNNING,
                    began,
                    attempts=1,
                    started_at=began,
                    order_id=rng.randrange(1, 10**6),
                )
            )
            end = time.time()
            t0 = time.perf_counter()
            writer.wait_durable(
                writer.record(
                    Change(mid, "orders.validate", "orders", State.SUCCEEDED, end, finished_at=end),
                    urgent=True,
                )
            )
            latency = time.perf_counter() - t0
            with self.lock:
                self.samples.append((time.monotonic(), latency))
            self.stop.wait(max(0.0, self.period - (time.time() - began)))

    def between(self, start: float, end: float) -> list[float]:
        with self.lock:
            return [lat for when, lat in self.samples if start <= when <= end]

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(10)
        for writer in self.writers:
            writer.close()


def prune_under_load(dsn: str, baseline_s: float, batch: int) -> dict[str, Any]:
    from shop.ops.maintenance import prune_job_ledger

    writers = Writers(dsn)
    writers.start()
    try:
        t_base = time.monotonic()
        time.sleep(baseline_s)  # the writers' own pace, before the prune
        t0 = time.monotonic()
        removed = prune_job_ledger(PRUNE_DAYS, batch=batch)
        t1 = time.monotonic()
        time.sleep(1)
    finally:
        writers.close()
    before, during = writers.between(t_base, t0), writers.between(t0, t1)
    return {"removed": removed, "prune_s": t1 - t0, "before": before, "during": during}


def server_ms(cur: Any, statement: str, params: tuple[Any, ...]) -> float:
    """Planning plus execution time of one statement, as PostgreSQL measured it."""
    cur.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, params)
    plan = cur.fetchone()[0][0]
    return float(plan["Planning Time"] + plan["Execution Time"])


def explain(cur: Any, statement: str, params: tuple[Any, ...]) -> None:
    cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)
    print("\n".join("    " + row[0] for row in cur.fetchall()))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--lookups", type=int, default=1000)
    ap.add_argument("--baseline-s", type=float, default=5.0)
    ap.add_argument(
        "--prune-batch",
        type=int,
        default=1000,
        help="rows per prune transaction (1000: SHOPJOBS_CLEANUP_BATCH_SIZE's default, what the "
        "scheduled prune uses)",
    )
    ap.add_argument("--explain", action="store_true", help="print the plans of the queries")
    ap.add_argument(
        "--skip-load",
        action="store_true",
        help="reuse the database of the last run (its rows, not a fresh COPY)",
    )
    a = ap.parse_args()

    import psycopg2

    from jobcore import db
    from jobcore.ledger import queries
    from jobcore.settings import JobSettings
    from shop import dbadmin

    dsn = DB_URL.replace("+psycopg2", "")
    if not a.skip_load:
        dbadmin.create_database(DB_URL, recreate=True)
        dbadmin.migrate(DB_URL)
    pg = psycopg2.connect(dsn)
    pg.autocommit = True
    cur = pg.cursor()
    if a.skip_load:
        cur.execute(
            "SELECT message_id FROM job_ledger TABLESAMPLE SYSTEM (1) LIMIT %s", (a.lookups,)
        )
        ids = [r[0] for r in cur.fetchall()]
    else:
        ids = load(cur, a.rows, a.lookups)
    cur.execute("SELECT max(order_id) FROM job_ledger")
    max_order = cur.fetchone()[0] or 1
    db.configure(JobSettings.from_env({"SHOPJOBS_DATABASE_URL": DB_URL}))
    rng = random.Random(7)
    results: dict[str, float] = {}

    def by_id() -> Iterator[None]:
        for mid in ids:
            with db.read_scope() as s:
                assert queries.job(s, mid) is not None
            yield

    def by_order() -> Iterator[None]:
        while True:
            with db.read_scope() as s:
                queries.history_of_order(s, rng.randrange(1, max_order + 1))
            yield

    ids = (ids * (a.lookups // max(1, len(ids)) + 1))[: a.lookups]
    rng.shuffle(ids)
    show, order = by_id(), by_order()
    id_times = timed(lambda: next(show), len(ids))
    order_times = timed(lambda: next(order), a.lookups)
    print(f"RESULT name=ledger_lookup_by_message_id n={len(id_times)} {_ms(id_times)}", flush=True)
    print(f"RESULT name=ledger_lookup_by_order n={len(order_times)} {_ms(order_times)}", flush=True)
    results["by_id_p99_ms"] = _pct(id_times, 0.99) * 1000
    results["by_order_p99_ms"] = _pct(order_times, 0.99) * 1000

    def failed_list() -> None:
        with db.read_scope() as s:
            since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
            queries.jobs(s, state="failed", since=since)

    # the same lookups timed inside PostgreSQL (planning + execution): what the index gives,
    # apart from this client's Python and a busy machine's scheduling
    by_id_sql = "SELECT * FROM job_ledger WHERE message_id = %s"
    by_order_sql = (
        "SELECT * FROM job_ledger WHERE order_id = %s"
        " ORDER BY enqueued_at ASC NULLS LAST, state_changed_at"
    )
    list_sql = (
        "SELECT * FROM job_ledger WHERE state = 'failed' AND state_changed_at >= %s"
        " ORDER BY state_changed_at DESC LIMIT 50"
    )
    server_id = [server_ms(cur, by_id_sql, (mid,)) for mid in ids]
    server_order = [
        server_ms(cur, by_order_sql, (rng.randrange(1, max_order + 1),)) for _ in range(a.lookups)
    ]
    since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    server_list = [server_ms(cur, list_sql, (since,)) for _ in range(50)]
    for name, values in (
        ("by_message_id", server_id),
        ("by_order", server_order),
        ("jobs_list_failed_2h", server_list),
    ):
        print(
            f"RESULT name=ledger_server_side_{name} n={len(values)} "
            f"p50_ms={_pct(values, 0.5):.3f} p99_ms={_pct(values, 0.99):.3f}",
            flush=True,
        )
    results["server_by_id_p99_ms"] = _pct(server_id, 0.99)
    results["server_by_order_p99_ms"] = _pct(server_order, 0.99)
    results["server_list_p99_ms"] = _pct(server_list, 0.99)

    list_times = timed(failed_list, 50)
    shopjobs = os.path.join(os.path.dirname(sys.executable), "shopjobs")
    env = {**os.environ, "SHOPJOBS_DATABASE_URL": DB_URL}
    t0 = time.perf_counter()
    subprocess.run(
        [shopjobs, "jobs", "list", "--state", "failed", "--since", "2h"],
        env=env,
        cwd=_anchor.ROOT,
        check=True,
        capture_output=True,
    )
    command_s = time.perf_counter() - t0
    print(
        f"RESULT name=ledger_jobs_list_failed_2h n=50 {_ms(list_times)} "
        f"command_wall_ms={command_s * 1000:.0f}",
        flush=True,
    )
    results["list_p99_ms"] = _pct(list_times, 0.99) * 1000

    if a.explain:
        since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
        print("  plan: jobs list --state failed --since 2h")
        explain(
            cur,
            "SELECT * FROM job_ledger WHERE state = 'failed' AND state_changed_at >= %s"
            " ORDER BY state_changed_at DESC LIMIT 50",
            (since,),
        )
        print("  plan: jobs order")
        explain(
            cur,
            "SELECT * FROM job_ledger WHERE order_id = %s ORDER BY enqueued_at ASC NULLS"
            " LAST, state_changed_at",
            (max_order // 2,),
        )

    pruned = prune_under_load(dsn, a.baseline_s, a.prune_batch)
    before, during = pruned["before"], pruned["during"]
    print(
        f"RESULT name=ledger_prune removed={pruned['removed']} seconds={pruned['prune_s']:.1f} "
        f"rows_per_s={pruned['removed'] / max(pruned['prune_s'], 1e-9):.0f}",
        flush=True,
    )
    print(f"RESULT name=ledger_writers_before_prune n={len(before)} {_ms(before)}", flush=True)
    print(f"RESULT name=ledger_writers_during_prune n={len(during)} {_ms(during)}", flush=True)
    results["writers_p99_ms"] = _pct(during, 0.99) * 1000 if during else float("nan")
    results["prune_s"] = pruned["prune_s"]
    results["pruned"] = pruned["removed"]
    cur.execute(
        "SELECT count(*) FROM job_ledger WHERE state_changed_at < now() - %s::interval",
        (f"{PRUNE_DAYS} days",),
    )
    left = cur.fetchone()[0]
    pg.close()
    goals = (
        ("lookup by message id p99 (client)", results["by_id_p99_ms"], 2.0),
        ("lookup by message id p99 (in PostgreSQL)", results["server_by_id_p99_ms"], 2.0),
        ("lookup by order p99 (client)", results["by_order_p99_ms"], 5.0),
        ("lookup by order p99 (in PostgreSQL)", results["server_by_order_p99_ms"], 5.0),
        ("jobs list --state failed --since 2h p99", results["list_p99_ms"], 200.0),
        ("writers' p99 during the prune", results["writers_p99_ms"], 50.0),
    )
    for what, value, goal in goals:
        verdict = "met" if value < goal else "NOT MET"
        print(f"GOAL {what}: {value:.2f} ms (goal < {goal:g} ms) {verdict}")
    print(
        f"SUMMARY ledger_scale rows={a.rows} "
        + " ".join(
            f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in results.items()
        )
        + f" old_rows_left={left}",
        flush=True,
    )


if __name__ == "__main__":
    main()
