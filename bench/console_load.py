"""The console on a big ledger: 5 M rows loaded by COPY, then pages timed over HTTP.

Targets (issue [13]): the jobs page, a filtered search and an order's timeline each answer in
< 300 ms. Also printed: the other pages, and what the console's four ledger indexes cost the
ledger writer (the workers' side), measured by the writer's own upsert with and without them.

usage: python -m bench.console_load [--rows 5000000] [--samples 20] [--keep]
  SHOPJOBS_BENCH_DATABASE_URL picks the database (default .../shopjobs_console_bench; recreated).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid

import httpx
import psycopg2

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
URL = os.environ.get(
    "SHOPJOBS_BENCH_DATABASE_URL",
    "postgresql+psycopg2://postgres@127.0.0.1:5432/shopjobs_console_bench",
)
TARGET_MS = 300
CONSOLE_INDEXES = (
    "ix_job_ledger_actor_changed",
    "ix_job_ledger_queue_changed",
    "ix_job_ledger_args",
    "ix_job_ledger_replay_of",
)
QUEUES = ("orders", "payments", "inventory", "notifications", "maintenance", "reports", "media")
ACTORS = [(f"{q}.task_{i:02d}", q) for q in QUEUES for i in range(9)]  # 63 actors
STATES = (
    ("succeeded", 0.90),
    ("failed", 0.03),
    ("dead", 0.01),
    ("cancelled", 0.02),
    ("skipped", 0.02),
    ("enqueued", 0.01),
    ("retrying", 0.005),
    ("running", 0.005),
)
ORDER_STEPS = (
    "payments.validate_payment",
    "orders.reserve_inventory",
    "orders.send_to_warehouse",
    "orders.notify_customer",
    "notifications.send_email",
    "orders.update_order_tracking",
)
ERRORS = (
    "TimeoutError: read timed out after 5 s",
    "PaymentDeclined: card declined for order {n}",
    "RuntimeError: warehouse answered 503",
    "IntegrityError: duplicate key value violates unique constraint",
)
TRACEBACK = (
    'Traceback (most recent call last):\n  File "/app/actors/x.py", line 20, in wrapper\n'
    '    return fn(*args, **kwargs)\n  File "/app/shop/x.py", line 52, in step\n'
    "    raise error(...)\n{error}\n"
)


def psycopg_dsn(url: str) -> str:
    return url.replace("postgresql+psycopg2://", "postgresql://", 1)


def rows(n: int, now: dt.datetime, rng: random.Random):  # type: ignore[no-untyped-def]
    """Ledger rows over the last 30 days in the order a ledger grows (oldest first); 40 % of them
    are 6-step order histories; only the last 15 minutes hold unfinished jobs (a backlog of a
    few thousand), as on a healthy system."""
    states, weights = zip(*STATES)
    start, step = now - dt.timedelta(days=30), dt.timedelta(days=30) / n
    recent = now - dt.timedelta(minutes=15)
    order = 0
    i = 0
    while i < n:
        base = start + step * i
        if rng.random() < 0.4 / 6:
            order += 1
            for k, actor in enumerate(ORDER_STEPS):
                if i >= n:
                    return
                at = base + dt.timedelta(seconds=k * 2)
                state = "failed" if (order % 50 == 0 and k == 1) else "succeeded"
                yield row(actor, actor.split(".")[0], state, at, {"order_id": order}, order, rng)
                i += 1
            continue
        actor, queue = ACTORS[int(rng.paretovariate(1.2)) % len(ACTORS)]
        state = rng.choices(states, weights)[0]
        if state in ("enqueued", "running", "retrying") and base < recent:
            state = "succeeded"
        at = base + dt.timedelta(seconds=rng.uniform(-30, 30))
        args = {
            "user_id": rng.randrange(1, 200_000),
            "kind": rng.choice(("daily", "weekly", "manual")),
        }
        yield row(actor, queue, state, at, args, None, rng)
        i += 1


def row(
    actor: str,
    queue: str,
    state: str,
    at: dt.datetime,
    args: dict,
    order: int | None,  # type: ignore[type-arg]
    rng: random.Random,
) -> list[object]:
    failed = state in ("failed", "dead", "retrying")
    error = rng.choice(ERRORS).format(n=order or 0) if failed else None
    started = (
        at - dt.timedelta(seconds=rng.uniform(0.01, 2))
        if state not in ("enqueued", "cancelled")
        else None
    )
    enqueued = (started or at) - dt.timedelta(seconds=rng.uniform(0.001, 1))
    finished = at if state in ("succeeded", "failed", "dead", "skipped", "cancelled") else None
    return [
        str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        actor,
        queue,
        state,
        at.isoformat(),
        json.dumps(args),
        1 + (2 if failed else 0),
        enqueued.isoformat(),
        None,
        started.isoformat() if started else None,
        finished.isoformat() if finished else None,
        error,
        TRACEBACK.format(error=error) if error else None,
        order,
        args.get("user_id"),
        "bench-host:1" if started else None,
    ]


COLUMNS = (
    "message_id",
    "actor",
    "queue",
    "state",
    "state_changed_at",
    "args",
    "attempts",
    "enqueued_at",
    "eta",
    "started_at",
    "finished_at",
    "error",
    "traceback",
    "order_id",
    "user_id",
    "worker",
)


class CsvStream(io.RawIOBase):
    """Rows as CSV, read by COPY in chunks (5 M rows never sit in memory)."""

    def __init__(self, source):  # type: ignore[no-untyped-def]
        self.source, self.buffer = source, b""

    def readable(self) -> bool:
        return True

    def readinto(self, target) -> int:  # type: ignore[no-untyped-def]
        while len(self.buffer) < len(target):
            text = io.StringIO()
            writer = csv.writer(text)
            for _ in range(2000):
                try:
                    writer.writerow(next(self.source))
                except StopIteration:
                    break
            chunk = text.getvalue().encode()
            if not chunk:
                break
            self.buffer += chunk
        n = min(len(target), len(self.buffer))
        target[:n], self.buffer = self.buffer[:n], self.buffer[n:]
        return n


def load(conn, n: int) -> float:  # type: ignore[no-untyped-def]
    """COPY ``n`` rows with the ledger's secondary indexes dropped, then rebuild them (as a bulk
    load would); returns seconds."""
    started = time.monotonic()
    with conn.cursor() as cur:
        cur.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'job_ledger' "
            "AND indexname <> 'pk_job_ledger'"
        )
        indexes = cur.fetchall()
        for name, _ in indexes:
            cur.execute(f"DROP INDEX {name}")
        conn.commit()
        now = dt.datetime.now(dt.UTC)
        stream = io.BufferedReader(CsvStream(rows(n, now, random.Random(13))), 1 << 20)
        cur.copy_expert(
            f"COPY job_ledger ({', '.join(COLUMNS)}) FROM STDIN WITH (FORMAT csv)", stream
        )
        conn.commit()
        print(
            f"   copied {n:,} rows in {time.monotonic() - started:.0f} s; building indexes",
            flush=True,
        )
        cur.execute("SET maintenance_work_mem = '512MB'")
        for _, definition in indexes:
            cur.execute(definition)
        cur.execute("ANALYZE job_ledger")
        conn.commit()
    return time.monotonic() - started


def writer_cost(
    dsn: str, n: int = 40_000, only: tuple[str, ...] = CONSOLE_INDEXES
) -> tuple[float, float]:
    """Seconds for the ledger writer (its own batched upsert) to record ``n`` jobs as enqueued,
    running, succeeded: with the console's indexes and without them (alternating, best of two),
    on the still empty job_ledger."""
    from jobcore.ledger.writer import Change, LedgerWriter

    conn = psycopg2.connect(dsn)
    with conn.cursor() as cur:
        cur.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE indexname = ANY(%s)", (list(only),)
        )
        definitions = cur.fetchall()
    results: dict[bool, list[float]] = {True: [], False: []}
    try:
        for with_indexes in (False, True, False, True):
            with conn.cursor() as cur:
                cur.execute("TRUNCATE job_ledger")
                for name, definition in definitions:
                    cur.execute(f"DROP INDEX IF EXISTS {name}")
                    if with_indexes:
                        cur.execute(definition)
            conn.commit()
            ids = [str(uuid.uuid4()) for _ in range(n)]
            started = time.monotonic()
            for state in ("enqueued", "running", "succeeded"):
                for i in range(0, n, 500):
                    batch = [
                        Change(
                            message_id=m,
                            actor="orders.task_01",
                            queue="orders",
                            state=state,
                            state_ts=time.time(),
                            attempts=1 if state == "running" else 0,
                            args=json.dumps({"order_id": k}) if state == "enqueued" else None,
                            order_id=k,
                        )
                        for k, m in enumerate(ids[i : i + 500], start=i)
                    ]
                    LedgerWriter._write(conn, batch)
            results[with_indexes].append(time.monotonic() - started)
        with conn.cursor() as cur:
            cur.execute("TRUNCATE job_ledger")
        conn.commit()
    finally:
        conn.close()
    return min(results[True]), min(results[False])


def start_console(env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    command = [os.path.join(os.path.dirname(sys.executable), "shopjobs"), "console", "--port", "0"]
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    found: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            match = re.search(r"listening on (http://\S+?)/?$", line.strip())
            if match:
                found.append(match[1])
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(60)
    if not found:
        proc.kill()
        raise SystemExit("the console did not start")
    return proc, found[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--keep", action="store_true", help="reuse the database if it has the rows")
    ap.add_argument("--writer-only", action="store_true", help="only the indexes' cost, one by one")
    args = ap.parse_args()
    if args.writer_only:
        return writer_only()
    os.environ["SHOPJOBS_DATABASE_URL"] = URL
    from shop import dbadmin

    dsn = psycopg_dsn(URL)
    reuse = False
    if args.keep and dbadmin.database_exists(URL):
        with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
            cur.execute("SELECT reltuples FROM pg_class WHERE relname = 'job_ledger'")
            reuse = (cur.fetchone() or [0])[0] >= args.rows * 0.9
    if not reuse:
        print(f"== database {URL.rsplit('/', 1)[1]}: recreated and migrated", flush=True)
        dbadmin.create_database(URL, recreate=True)
        dbadmin.migrate(URL)
        before, after = writer_cost(dsn)
        print(
            f"== ledger writer, 40,000 jobs x 3 states (best of 2): {before:.2f} s with the console's indexes, "
            f"{after:.2f} s without ({before / after:.2f}x)",
            flush=True,
        )
        conn = psycopg2.connect(dsn)
        print(f"== loading {args.rows:,} ledger rows by COPY", flush=True)
        print(f"   loaded and indexed in {load(conn, args.rows):.0f} s", flush=True)
        conn.close()
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT pg_size_pretty(pg_total_relation_size('job_ledger')), count(*) FROM job_ledger"
        )
        size, count = cur.fetchone()
        cur.execute(
            "SELECT order_id FROM job_ledger WHERE order_id IS NOT NULL AND state = 'failed' "
            "ORDER BY order_id DESC LIMIT 1"
        )
        failed_order = cur.fetchone()[0]
        cur.execute("SELECT max(order_id) / 2 FROM job_ledger")
        some_order = cur.fetchone()[0]
        cur.execute("SELECT user_id FROM job_ledger WHERE user_id IS NOT NULL LIMIT 1")
        some_user = cur.fetchone()[0]
    print(f"== ledger: {count:,} rows, {size}", flush=True)

    from jobcore.console import auth
    from jobcore.db import configure, session_scope
    from jobcore.errors import InvalidInput
    from shop.settings import Settings

    configure(Settings.from_env())
    password = "bench password " + uuid.uuid4().hex[:8]
    with session_scope() as s:
        try:
            auth.create_user(s, "bench", "viewer", password)
        except InvalidInput:  # the user exists from an earlier run
            s.rollback()
            auth.set_password(s, "bench", password)
    env = {
        **os.environ,
        "SHOPJOBS_DATABASE_URL": URL,
        "SHOPJOBS_CONSOLE_SECURE_COOKIES": "0",
        "SHOPJOBS_CONSOLE_STATEMENT_TIMEOUT_MS": "30000",
    }
    proc, base = start_console(env)
    try:
        client = httpx.Client(base_url=base, timeout=60)
        form = client.get("/login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', form)[1]  # type: ignore[index]
        assert (
            client.post(
                "/login",
                data={"csrf_token": token, "name": "bench", "password": password, "next": "/"},
            ).status_code
            == 303
        )
        deep = _deep_cursor(client, 100)
        pages = [
            ("jobs page (newest 50)", "/jobs", True),
            ("jobs page 100 pages deep (keyset)", deep, False),
            ("filtered: state=failed & actor", "/jobs?state=failed&actor=orders.task_01", True),
            ("filtered: actor & last 2 h", "/jobs?actor=payments.task_03&since=2h", True),
            ("filtered: argument order_id=N", f"/jobs?arg=order_id={some_order}", True),
            ("filtered: user & state", f"/jobs?user={some_user}&state=succeeded", True),
            ("filtered: error text in failed", "/jobs?state=failed&error=warehouse", True),
            ("filtered: rare (dead, rare actor)", "/jobs?state=dead&actor=media.task_08", True),
            ("order timeline (failed order)", f"/orders/{failed_order}", True),
            ("order timeline (other order)", f"/orders/{some_order}", True),
            ("job page", None, False),
            ("overview (6 h window)", "/", False),
            ("failures (24 h)", "/failures", False),
            ("dead letters", "/dead-letters", False),
            ("ledger health (counts every row)", "/ledger", False),
        ]
        newest = client.get("/jobs.json?limit=1").json()["jobs"][0]["message_id"]
        print(
            "\nms over HTTP; 'first' is the first request (the overview and the ledger's counts are "
            "then shared for 2 s and 60 s)",
            flush=True,
        )
        print(
            f"{'page':40s} {'first':>7s} {'median':>7s} {'p95':>7s} {'max':>7s}  target", flush=True
        )
        failures = 0
        for name, path, targeted in pages:
            path = path or f"/jobs/{newest}"
            samples: list[float] = []
            first = 0.0
            for i in range(args.samples + 2):
                started = time.perf_counter()
                response = client.get(path)
                elapsed = (time.perf_counter() - started) * 1000
                if response.status_code != 200:
                    raise SystemExit(
                        f"{path} answered {response.status_code}: {response.text[:300]}"
                    )
                if i == 0:
                    first = elapsed
                if i >= 2:  # two warm-ups
                    samples.append(elapsed)
            median = statistics.median(samples)
            p95 = sorted(samples)[max(0, int(len(samples) * 0.95) - 1)]
            verdict = ""
            if targeted:
                ok = p95 < TARGET_MS
                failures += not ok
                verdict = f"p95 < {TARGET_MS} ms: {'yes' if ok else 'NO'}"
            print(
                f"{name:40s} {first:7.0f} {median:7.0f} {p95:7.0f} {max(samples):7.0f}  {verdict}",
                flush=True,
            )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
    print(f"\nRESULT console_load rows={count} targets_missed={failures}")
    return 1 if failures else 0


def writer_only() -> int:
    """Each console index's cost to the ledger writer, alone, in a fresh database."""
    from shop import dbadmin

    url = URL.rsplit("/", 1)[0] + "/shopjobs_console_writer"
    dbadmin.create_database(url, recreate=True)
    dbadmin.migrate(url)
    try:
        for name in CONSOLE_INDEXES:
            with_, without = writer_cost(psycopg_dsn(url), only=(name,))
            print(
                f"{name:32s} {with_:6.2f} s with, {without:6.2f} s without ({with_ / without:.2f}x)",
                flush=True,
            )
    finally:
        dbadmin.drop_database(url)
    return 0


def _deep_cursor(client: httpx.Client, pages: int) -> str:
    path = "/jobs"
    for _ in range(pages):
        html = client.get(path).text
        match = re.search(r'href="(/jobs\?[^"]*after=[^"]+)" rel="next"', html)
        if not match:
            break
        path = match[1].replace("&amp;", "&")
    return path


if __name__ == "__main__":
    sys.exit(main())
