"""The fault catalogue at soak size: every scenario of ``tests/chaos`` at 10,000 orders.

Makes its own vhost and database, starts the payment, warehouse and carrier stand-ins, and runs
each chosen row (``devtools.chaos.scenarios``) on a fresh supervised worker group: orders in,
the row's fault, drain, invariant audit. Prints one line per row as it ends and the table:
scenario, orders, faults injected, lost, stranded, duplicate effects, time to drain (from the
last fault), and what else broke. It runs on a private RabbitMQ node and PostgreSQL instance
of its own (``devtools.private``), so its broker and database faults never touch the machine's
services; ``--machine-services`` runs it on those instead (then nothing else may use them).

usage: python -m bench.soak [--orders 10000] [--rows T1,T3,T4,...] [--processes 2] [--threads 8]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

VHOST = "shopjobs_soak"
DATABASE = "shopjobs_soak"
DATABASE_URL = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{DATABASE}"
DEFAULT_ROWS = "T1,T2,T3,T4,T5,T6,T7,T8,T12,T23,T25,T26"


def _setup(amqp_address: str, database_url: str) -> None:
    from devtools import devservices
    from shop import dbadmin

    devservices.create_vhost(VHOST)
    os.environ.update(
        {
            "SHOPJOBS_AMQP_URL": f"amqp://guest:guest@{amqp_address}/{VHOST}",
            "SHOPJOBS_DATABASE_URL": database_url,
            "SHOPJOBS_LOG_FORMAT": "json",
            # the stand-ins listen on loopback, which the outbound guard refuses unless listed
            "SHOPJOBS_OUTBOUND_ALLOWED_HOSTS": "127.0.0.1",
        }
    )
    dbadmin.create_database(database_url, recreate=True)
    dbadmin.migrate(database_url)


def _reset() -> None:
    """Empty tables and queues between rows: each row's audit sees only its own run."""
    from sqlalchemy import text

    from devtools import devservices
    from jobcore import db
    from jobcore.models import Base
    from shop.queues import Queue

    tables = ", ".join(t.name for t in reversed(Base.metadata.sorted_tables))
    with db.get_engine().begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    devservices.purge_queues(os.environ["SHOPJOBS_AMQP_URL"], [q.value for q in Queue] + ["chaos"])


def _run(row: str, h, orders: int):  # type: ignore[no-untyped-def]
    from devtools.chaos import network, scenarios

    database = DATABASE
    if row == "T1":
        return scenarios.kill_worker_processes(h, orders, kills=10)
    if row == "T2":
        return scenarios.crash_points(h, orders, "after_provider_charge", budget=10, every=50)
    if row == "T3":
        return scenarios.broker_outages(h, orders, outages=5, outage_s=10)
    if row == "T4":
        return scenarios.postgres_faults(h, orders, database, stop_s=60)
    if row == "T5":
        return network.broker_partition(h, orders, blackhole_s=60, heartbeat_s=10)
    if row == "T6":
        return network.database_partition(h, orders, blackhole_s=30)
    if row == "T7":
        return scenarios.poison_messages(h, orders, poisons=50)
    if row == "T8":
        return scenarios.crash_poison(h, orders, poisons=3)
    if row == "T12":
        return scenarios.duplicate_delivery(h, orders)
    if row == "T23":
        return scenarios.relay_faults(h, orders, kills=5)
    if row == "T25":
        return scenarios.oversell(h, orders, stock=orders // 10)
    if row == "T26":
        return scenarios.sigterm_group(h, orders, stops=5)
    raise SystemExit(f"row {row} has no soak scenario")


def _line(outcome) -> str:  # type: ignore[no-untyped-def]
    drain = f"{outcome.drain_s:.1f}s" if outcome.drain_s is not None else "not drained"
    problems = "; ".join(p[:140] for p in outcome.problems()) or "ok"
    return (
        f"| {outcome.row} | {outcome.scenario} | {outcome.orders} | {outcome.faults} | {outcome.lost} | "
        f"{outcome.stranded} | {outcome.audit.duplicate_effects} | {drain} | {problems} |"
    )


HEADER = (
    "| row | scenario | orders | faults injected | lost | stranded | duplicate effects | "
    "time to drain | problems |\n|---|---|---|---|---|---|---|---|---|"
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", type=int, default=10_000)
    ap.add_argument("--rows", default=DEFAULT_ROWS, help="comma-separated catalogue rows")
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--drain-timeout", type=float, default=1800)
    ap.add_argument(
        "--machine-services",
        action="store_true",
        help="fault the machine's RabbitMQ and PostgreSQL instead of private instances",
    )
    args = ap.parse_args()
    # SIGTERM unwinds like Ctrl-C: the finally blocks stop the row's worker group and the
    # private services (a terminated soak left both running)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.machine_services:
        return _soak(args, "127.0.0.1:5672", DATABASE_URL)
    from devtools import private

    reason = private.available()
    if reason:
        raise SystemExit(f"no private services here ({reason}): try --machine-services")
    services = private.PrivateServices(name=f"shopjobs-soak-{os.getpid()}").start()
    try:
        os.environ.update(services.env(VHOST, DATABASE))
        print(
            f"private services: RabbitMQ {services.rabbit.node} on {services.rabbit.port}, "
            f"PostgreSQL on {services.postgres.port}",
            flush=True,
        )
        return _soak(args, f"127.0.0.1:{services.rabbit.port}", services.postgres.url(DATABASE))
    finally:
        services.stop()


def _soak(args: argparse.Namespace, amqp_address: str, database_url: str) -> int:
    _setup(amqp_address, database_url)
    import broker  # noqa: F401  (builds this process: settings, database, routing table)
    from devtools.chaos.harness import Harness
    from devtools.stand_ins.process import start_stand_in
    from devtools.stand_ins.sms import start_sms_stand_in
    from devtools.stand_ins.smtp import start_smtp_stand_in

    os.makedirs(".run/soak", exist_ok=True)
    parties = {name: start_stand_in(name) for name in ("payments", "warehouse", "carrier")}
    os.environ["SHOPJOBS_PAYMENT_URL"] = parties["payments"].url
    os.environ["SHOPJOBS_WAREHOUSE_URL"] = parties["warehouse"].url
    os.environ["SHOPJOBS_CARRIER_URL"] = parties["carrier"].url
    smtp, sms = start_smtp_stand_in(), start_sms_stand_in()
    parties.update(smtp=smtp, sms=sms)
    host, port = smtp.smtp_address()
    os.environ.update(
        {"SHOPJOBS_SMTP_HOST": host, "SHOPJOBS_SMTP_PORT": str(port), "SHOPJOBS_SMS_URL": sms.url}
    )
    from shop.integrations import providers
    from shop.settings import Settings

    providers.configure(Settings.from_env())
    lines = []
    try:
        for row in args.rows.split(","):
            _reset()
            for party in parties.values():
                party.reset()
            h = Harness(
                parties["payments"],
                ".run/soak",
                args.processes,
                args.threads,
                args.drain_timeout,
                smtp=smtp,
            )
            started = time.monotonic()
            try:
                outcome = _run(row.strip(), h, args.orders)
            finally:
                h.close()
            lines.append(_line(outcome))
            print(
                f"{lines[-1]}  ({time.monotonic() - started:.0f}s; evidence: {outcome.evidence})",
                flush=True,
            )
    finally:
        for party in parties.values():
            party.stop()
    print(
        f"\nsoak: {args.orders} orders per row, {args.processes} x {args.threads} workers\n{HEADER}"
    )
    print("\n".join(lines))
    return 0 if all(line.endswith("| ok |") for line in lines) else 1


if __name__ == "__main__":
    sys.exit(main())
