"""``python -m devtools.workload``: the main job.

Makes a fresh vhost and database, migrates, starts the real worker group under the supervisor
(``shopjobs worker``), seeds the shop, sends every scenario's jobs, shows progress, prints a
summary from the ledger, stops what it started, and exits 1 if any job was lost (not finished by
the deadline) or failed unexpectedly, or when work stopped moving (the reason is printed).
Its progress poll and summary ride out a database or broker restart; ``--fault`` injects one.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from typing import Any

from devtools.workload import inject

VHOST = os.environ.get("SHOPJOBS_MAIN_VHOST", "shopjobs_main")
DATABASE_URL = os.environ.get(
    "SHOPJOBS_MAIN_DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/shopjobs_main"
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument(
        "--deadline", type=float, default=300, help="seconds for each phase's jobs to finish"
    )
    ap.add_argument(
        "--overall-deadline", type=float, default=1200, help="seconds for the whole run"
    )
    ap.add_argument(
        "--stall",
        type=float,
        default=180,
        help="give up when the ledger's counts stay unchanged this many seconds",
    )
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--fault", choices=inject.FAULTS, help="break something once during phase 1")
    ap.add_argument(
        "--fault-at", type=float, default=0.3, help="fraction of phase 1 done when it fires"
    )
    args = ap.parse_args()

    from devtools import devservices
    from shop import dbadmin

    try:
        lock = dbadmin.hold_exclusive_use(DATABASE_URL, "main job")  # noqa: F841  (held until exit)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"== setting up: vhost {VHOST}, database {DATABASE_URL.rsplit('/', 1)[1]}", flush=True)
    devservices.create_vhost(VHOST)
    os.environ["SHOPJOBS_AMQP_URL"] = f"amqp://guest:guest@127.0.0.1:5672/{VHOST}"
    os.environ["SHOPJOBS_DATABASE_URL"] = DATABASE_URL
    os.environ.setdefault("SHOPJOBS_LOG_FORMAT", "json")
    dbadmin.create_database(DATABASE_URL, recreate=True)
    dbadmin.migrate(DATABASE_URL)
    from shop.queues import Queue

    devservices.purge_queues(os.environ["SHOPJOBS_AMQP_URL"], [q.value for q in Queue])
    os.makedirs(".run", exist_ok=True)

    from devtools.stand_ins.process import start_stand_in
    from devtools.workload import catalog_scenarios

    stop_catalog = catalog_scenarios.prepare()

    parties = {
        name: start_stand_in(name, log_path=f".run/{name}.log")
        for name in ("payments", "warehouse", "carrier")
    }
    os.environ["SHOPJOBS_PAYMENT_URL"] = parties["payments"].url
    os.environ["SHOPJOBS_WAREHOUSE_URL"] = parties["warehouse"].url
    os.environ["SHOPJOBS_CARRIER_URL"] = parties["carrier"].url
    parties["payments"].set_faults(mode="http_503", rate=0.05, paths=["/v1/charges"])

    import broker
    from devtools.processes import Worker
    from devtools.workload import metrics_check, scenarios, summary
    from devtools.workload.progress import Progress, Stopped, retrying
    from devtools.workload.seed import seed

    rng = random.Random(args.seed)
    from shop.scheduling.process import start_scheduler
    from shop.scheduling.summary import fires_summary

    metrics_port = metrics_check.free_port()
    worker = Worker(
        ("actors",),
        processes=args.processes,
        threads=args.threads,
        log_path=".run/workers.log",
        env={"SHOPJOBS_METRICS_PORT": str(metrics_port)},
    )
    fault = inject.Injection(args.fault, args.fault_at, worker) if args.fault else None
    scraped = None
    scheduler = None
    started = time.monotonic()
    progress = Progress(
        worker, started, args.overall_deadline, args.stall, on_poll=fault.on_poll if fault else None
    )
    sent: list[scenarios.Sent] = []
    ids: list[str] = []
    stopped: str | None = None
    snap = None
    try:
        worker.wait_ready()
        print(
            f"== workers ready: {args.processes} processes x {args.threads} threads under the supervisor "
            f"(pid {worker.pid}, log: .run/workers.log); "
            f"stand-ins: " + ", ".join(f"{n} {p.url}" for n, p in parties.items()),
            flush=True,
        )
        scheduler = start_scheduler(
            extra_env={"SHOPJOBS_SCHEDULE_MODULE": "devtools.workload.schedule"},
            log_path=".run/scheduler.log",
        )
        print(f"== scheduler running (pid {scheduler.pid}, log: .run/scheduler.log)", flush=True)
        _start_console()
        seeded = seed(rng)
        print(
            f"== seeded {len(seeded.user_ids)} customers, {len(seeded.product_ids)} products, "
            f"{len(seeded.order_ids)} past orders",
            flush=True,
        )
        for number, phase in enumerate(scenarios.phases(), 1):
            print(f"== phase {number}", flush=True)
            for scenario in phase:
                batch = scenario(rng, seeded)
                sent.append(batch)
                ids.extend(batch.message_ids)
                print(f"   sent {len(batch.message_ids):5d}  {batch.name}", flush=True)
            broker.flush_ledger()
            if fault is not None and number == 1:
                fault.arm()
            snap = progress.wait(ids, args.deadline)
            if fault is not None and number == 1:
                fault.join()
        scheduler.stop()
        scheduler = None
        snap = progress.wait(ids, args.deadline)  # the last fires' jobs
        print(retrying(summary.workers_line, "the worker registry"), flush=True)
        scraped = metrics_check.scrape(metrics_port)
    except Stopped as exc:
        stopped = str(exc)
        print(f"== stopped: {stopped}", flush=True)
    finally:
        if scheduler is not None:
            scheduler.stop()
        deaths = worker.deaths()
        worker.stop()
        for party in parties.values():
            party.stop()
        stop_catalog()
    print("== summary")
    for line in retrying(summary.report, "the summary"):
        print(line)
    print(f"metrics (workers' /metrics on 127.0.0.1:{metrics_port}):")
    print(
        "\n".join(
            retrying(lambda: metrics_check.report(scraped), "the ledger for the metrics check")
        )
    )
    print("scheduler:")
    for line in retrying(fires_summary, "the scheduler's fires"):
        print(f"  {line}")
    print(f"worker processes that died and were replaced by the supervisor: {deaths}")
    if fault is not None:
        print(f"fault injected: {args.fault}: " + ("; ".join(fault.lines) or "never fired"))
    expected = sum(s.expected_failures + s.expected_failures_later for s in sent)
    if snap is None:
        print(f"MAIN JOB FAILED: {stopped or 'no progress was ever read'}", file=sys.stderr)
        return 1
    failed = snap.states.get("failed", 0) + snap.states.get("dead", 0)
    lost = snap.total - snap.finished
    print(
        f"lost jobs: {lost}; failures: {failed} (expected from deliberate bad input, declines, sold-out stock: {expected})"
    )
    stranded_messages, stranded_orders = _stranded(set(seeded.order_ids))
    print(
        f"stranded messages: {stranded_messages} (unpublished or lost for over {STRANDED_AFTER_S} s); "
        f"stranded orders: {stranded_orders} (not settled, no job pending; seeded ones aside)"
    )
    reasons = [stopped] if stopped else []
    if fault is not None and (fault.failed or not fault.lines):
        reasons.append(fault.failed or f"the fault {args.fault} never fired")
    if stranded_messages:
        reasons.append(f"{stranded_messages} messages stranded")
    if stranded_orders:
        reasons.append(f"{stranded_orders} orders stranded")
    if lost or failed != expected or reasons:
        why = "; ".join(
            reasons
            + ([f"{lost} jobs lost"] if lost else [])
            + ([f"{failed} failures, {expected} expected"] if failed != expected else [])
        )
        print(f"MAIN JOB FAILED: {why}", file=sys.stderr)
        return 1
    print("MAIN JOB OK")
    return 0


STRANDED_AFTER_S = 30


def _stranded(seeded_orders: set[int]) -> tuple[int, int]:
    """Stranded sends (``jobs stranded``) and the workload's stranded orders, when it ends.

    Seeded orders are left out: the seed writes past orders without jobs on purpose, and so
    are orders with a job an operator cancelled (cancelling a pipeline step stops the order
    there by design; the workload's operators cancel no order's job today). Either count fails
    the main job.
    """
    from sqlalchemy import text

    from jobcore.db import session_scope
    from jobcore.ledger import stranded
    from shop.orders.stranded import stranded_orders

    def workload_orders(session: Any, older_than_s: float) -> list[dict[str, Any]]:
        found = [
            r for r in stranded_orders(session, older_than_s) if r["order_id"] not in seeded_orders
        ]
        stopped_by_operators = set(
            session.scalars(
                text(
                    "SELECT DISTINCT order_id FROM job_ledger"
                    " WHERE order_id = ANY(:ids) AND state = 'cancelled'"
                ),
                {"ids": [r["order_id"] for r in found]},
            )
        )
        return [r for r in found if r["order_id"] not in stopped_by_operators]

    with session_scope() as s:
        found = stranded.find(s, STRANDED_AFTER_S, checks={"orders": workload_orders})
    counts = found.counts
    return counts["unpublished"] + counts["lost"], counts["orders"]


def _wait(ids: list[str], deadline_s: float, started: float):
    pass


def _start_console() -> None:
    """[13] The operator's web console on this run's database, for watching the run: a one-run
    admin user, the URL printed, the process stopped by its PID when the main job exits."""
    import atexit
    import secrets
    import subprocess

    from devtools.processes import ROOT

    shopjobs = os.path.join(os.path.dirname(sys.executable), "shopjobs")
    env = {**os.environ, "PYTHONPATH": ROOT}
    password = secrets.token_urlsafe(12)
    made = subprocess.run(
        [shopjobs, "console", "users", "add", "main", "--role", "admin", "--password-stdin"],
        input=password + "\n",
        text=True,
        env=env,
        cwd=ROOT,
        capture_output=True,
        check=False,
    )
    if made.returncode != 0:  # the console only watches the run: the run goes on without it
        print(f"== console not started: {made.stderr.strip()[-300:]}", flush=True)
        return
    log = open(".run/console.log", "w")  # noqa: SIM115  (held open for the process's life)
    proc = subprocess.Popen(
        [shopjobs, "console", "--port", os.environ.get("SHOPJOBS_MAIN_CONSOLE_PORT", "0")],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env=env,
        cwd=ROOT,
    )
    line = proc.stdout.readline() if proc.stdout else ""
    url = (
        line.rsplit(" ", 1)[-1].strip()
        if "listening on" in line
        else "(did not start: .run/console.log)"
    )
    print(f"== console: {url} (user main, password {password}; log: .run/console.log)", flush=True)

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()

    atexit.register(stop)


if __name__ == "__main__":
    sys.exit(main())
