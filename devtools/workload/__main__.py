"""``python -m devtools.workload``: the main job.

Makes a fresh vhost and database, migrates, starts the real worker group under the supervisor
(``shopjobs worker``), seeds the shop, sends every scenario's jobs, shows progress, prints a
summary from the ledger, stops what it started, and exits 1 if any job was lost (not finished by
the deadline) or failed unexpectedly, when work stopped moving, or when the workers' log has
ERROR lines at shutdown or more than 2 lines per successful job (the reason is printed).
Its progress poll and summary ride out a database or broker restart; ``--fault`` injects one.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from typing import Any

from devtools.ports import free_port
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
    ap.add_argument(
        "--private-services",
        action="store_true",
        default=os.environ.get("SHOPJOBS_MAIN_PRIVATE_SERVICES") == "1",
        help="run on a private RabbitMQ node and PostgreSQL instance started for this run "
        "(devtools.private), so --fault never touches the machine's services; also "
        "SHOPJOBS_MAIN_PRIVATE_SERVICES=1",
    )
    args = ap.parse_args()
    if not args.private_services:
        return _run(args, DATABASE_URL, "127.0.0.1:5672")
    from devtools import private

    reason = private.available()
    if reason:
        print(f"error: no private services here: {reason}", file=sys.stderr)
        return 2
    services = private.PrivateServices(name=f"shopjobs-main-{os.getpid()}").start()
    try:
        os.environ.update(services.env(VHOST, "shopjobs_main"))
        print(
            f"== private services: RabbitMQ {services.rabbit.node} on {services.rabbit.port}, "
            f"PostgreSQL on {services.postgres.port} (booted in {services.boot_s:.1f}s)",
            flush=True,
        )
        return _run(
            args, services.postgres.url("shopjobs_main"), f"127.0.0.1:{services.rabbit.port}"
        )
    finally:
        services.stop()


def _run(args: argparse.Namespace, database_url: str, amqp_address: str) -> int:

    import secrets

    from sqlalchemy.engine import make_url

    from devtools import devservices
    from shop import db_logins, dbadmin

    try:
        lock = dbadmin.hold_exclusive_use(database_url, "main job")  # noqa: F841  (held until exit)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"== setting up: vhost {VHOST}, database {database_url.rsplit('/', 1)[1]}", flush=True)
    devservices.create_vhost(VHOST)
    os.environ["SHOPJOBS_AMQP_URL"] = f"amqp://guest:guest@{amqp_address}/{VHOST}"
    # each process under the login of its role: the owner migrates, workers, scheduler, relay,
    # console and this process's sends are the application role, backups the backup role, the
    # summary the read-only role (database_url, a superuser, only makes the logins and database)
    logins = db_logins.logins_for(
        database_url, str(make_url(database_url).database), f"Main-{secrets.token_hex(8)}"
    )
    os.environ["SHOPJOBS_DATABASE_URL"] = logins.app
    os.environ["SHOPJOBS_BACKUP_DATABASE_URL"] = logins.backup
    os.environ.setdefault("SHOPJOBS_LOG_FORMAT", "json")
    db_logins.create(logins, recreate=True)
    dbadmin.migrate(logins.owner)
    print(
        "== database roles: migrated by "
        + ", ".join(f"{kind} {make_url(logins.url(kind)).username}" for kind in db_logins.ROLES),
        flush=True,
    )
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
    from shop.settings import Settings as _Settings

    catalog_scenarios.allow_outbound(
        *(p.url for p in parties.values()), _Settings.from_env().sms_url
    )
    parties["payments"].set_faults(mode="http_503", rate=0.05, paths=["/v1/charges"])

    import broker
    from devtools.processes import Worker
    from devtools.workload import log_check, metrics_check, scenarios, summary
    from devtools.workload.progress import Progress, Stopped, retrying
    from devtools.workload.seed import seed

    rng = random.Random(args.seed)
    from shop.scheduling.process import start_scheduler
    from shop.scheduling.summary import fires_summary

    metrics_port = free_port()
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
        shutdown_at = log_check.offset(worker.log_path)
        worker.stop()
        for party in parties.values():
            party.stop()
        stop_catalog()
    _read_only(logins.readonly)
    print("== summary (read as the read-only role)")
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
    succeeded = snap.states.get("succeeded", 0) if snap is not None else 0
    logged = log_check.measure(worker.log_path, shutdown_at)
    print(f"worker log ({worker.log_path}):")
    print("\n".join(log_check.report(logged, succeeded)))
    if fault is not None:
        print(f"fault injected: {args.fault}: " + ("; ".join(fault.lines) or "never fired"))
    expected = sum(s.expected_failures + s.expected_failures_later for s in sent)
    if snap is None:
        print(f"MAIN JOB FAILED: {stopped or 'no progress was ever read'}", file=sys.stderr)
        return 1
    # a lost job the re-drive closed is dead but no failure of its own: its order went on
    redriven_orders, redriven_jobs = retrying(summary.redriven, "the re-driven orders")
    failed = snap.states.get("failed", 0) + snap.states.get("dead", 0) - redriven_jobs
    lost = snap.total - snap.finished
    print(
        f"lost jobs: {lost}; failures: {failed} (expected from deliberate bad input, declines, sold-out stock: {expected}); "
        f"re-driven orders: {redriven_orders} ({redriven_jobs} jobs lost in RabbitMQ)"
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
    reasons += log_check.failures(logged, succeeded)
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


def _read_only(url: str) -> None:
    """From here on this process only reads (the summary, the stranded check): as the read-only
    role, as reports do, so a report that writes fails here."""
    import dataclasses

    from jobcore import db
    from shop.settings import current

    db.configure(dataclasses.replace(current(), database_url=url))


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
