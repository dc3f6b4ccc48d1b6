"""An SMTP outage during a run of orders: are orders blocked, is any e-mail lost or doubled?

Starts its own vhost and database, the payment/warehouse/carrier/SMTP/SMS stand-ins and real
workers (production retry policy by default: backoff 1 s doubling with jitter, capped at
10 minutes). The SMTP port refuses connections for ``--outage-s`` seconds while ``--orders``
orders go through the pipeline; then it comes back. Prints how long the orders took during
the outage, the retries, how long after recovery the last e-mail went out, and lost/duplicate
counts by Message-ID.

usage: python -m bench.smtp_outage [--orders 500] [--outage-s 300] [--processes 2] [--threads 8]
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time

VHOST = "shopjobs_bench_notify"
DATABASE_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/shopjobs_bench_notify"
_pause = threading.Event()


def _count(query_fn) -> int:  # type: ignore[no-untyped-def]
    from jobcore.db import session_scope

    with session_scope() as s:
        return int(s.scalar(query_fn()) or 0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", type=int, default=500)
    ap.add_argument("--outage-s", type=float, default=300)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--min-backoff-ms", type=int, default=1000)
    ap.add_argument("--max-backoff-ms", type=int, default=600_000)
    ap.add_argument("--deadline-s", type=float, default=1800)
    args = ap.parse_args()

    from devtools import devservices
    from shop import dbadmin

    devservices.create_vhost(VHOST)
    os.environ.update(
        {
            "SHOPJOBS_AMQP_URL": f"amqp://guest:guest@127.0.0.1:5672/{VHOST}",
            "SHOPJOBS_DATABASE_URL": DATABASE_URL,
            "SHOPJOBS_LOG_FORMAT": "json",
            "SHOPJOBS_METRICS_PORT": "0",
            "SHOPJOBS_MIN_BACKOFF_MS": str(args.min_backoff_ms),
            "SHOPJOBS_MAX_BACKOFF_MS": str(args.max_backoff_ms),
            "SHOPJOBS_NOTIFY_MAX_RETRIES": "40",
        }
    )
    dbadmin.create_database(DATABASE_URL, recreate=True)
    dbadmin.migrate(DATABASE_URL)
    from shop.queues import Queue

    devservices.purge_queues(os.environ["SHOPJOBS_AMQP_URL"], [q.value for q in Queue])
    os.makedirs(".run", exist_ok=True)
    from devtools.stand_ins.process import start_stand_in
    from devtools.stand_ins.sms import start_sms_stand_in
    from devtools.stand_ins.smtp import start_smtp_stand_in

    parties = {name: start_stand_in(name) for name in ("payments", "warehouse", "carrier")}
    smtp, sms = start_smtp_stand_in(log_path=".run/bench-smtp.log"), start_sms_stand_in()
    host, port = smtp.smtp_address()
    os.environ.update(
        {
            "SHOPJOBS_PAYMENT_URL": parties["payments"].url,
            "SHOPJOBS_WAREHOUSE_URL": parties["warehouse"].url,
            "SHOPJOBS_CARRIER_URL": parties["carrier"].url,
            "SHOPJOBS_SMTP_HOST": host,
            "SHOPJOBS_SMTP_PORT": str(port),
            "SHOPJOBS_SMS_URL": sms.url,
        }
    )

    from sqlalchemy import func, select

    import broker  # noqa: F401  (the producer's broker, on this run's vhost)
    from actors.orders import process_order_async
    from devtools.processes import Worker
    from jobcore.db import session_scope
    from shop.models import Inventory, Notification, Order, OrderLine, Product, User

    worker = Worker(
        ("actors",),
        processes=args.processes,
        threads=args.threads,
        log_path=".run/bench-workers.log",
    )
    try:
        worker.wait_ready()
        with session_scope() as s:
            product = Product(sku="BENCH-1", name="Bench product", price_cents=1500)
            users = [
                User(email=f"bench{i}@example.test", full_name=f"Bench {i}") for i in range(100)
            ]
            s.add_all([product, *users])
            s.flush()
            s.add(Inventory(product_id=product.id, available=args.orders * 2))
            orders = [
                Order(user_id=users[i % 100].id, total_cents=1500) for i in range(args.orders)
            ]
            s.add_all(orders)
            s.flush()
            s.add_all(
                OrderLine(order_id=o.id, product_id=product.id, quantity=1, unit_price_cents=1500)
                for o in orders
            )
            ids = [o.id for o in orders]
        smtp.set_faults(mode="refuse")
        outage_started = time.monotonic()
        for order_id in ids:
            process_order_async.send(order_id)
        print(f"outage started; {len(ids)} orders sent", flush=True)
        completed_at = None
        while time.monotonic() - outage_started < args.outage_s:
            if completed_at is None and _count(
                lambda: select(func.count()).select_from(Order).where(Order.status == "completed")
            ) == len(ids):
                completed_at = time.monotonic() - outage_started
                print(
                    f"all {len(ids)} orders completed {completed_at:.1f}s into the outage",
                    flush=True,
                )
            _pause.wait(1.0)
        retrying = _count(
            lambda: (
                select(func.count())
                .select_from(Notification)
                .where(Notification.status == "retrying")
            )
        )
        attempts_during = _count(lambda: select(func.coalesce(func.sum(Notification.attempts), 0)))
        smtp.clear_faults()
        recovered = time.monotonic()
        print(
            f"outage over after {recovered - outage_started:.0f}s: {retrying} e-mails waiting to retry, "
            f"{attempts_during} attempts refused so far",
            flush=True,
        )

        def sent() -> int:
            return _count(
                lambda: (
                    select(func.count())
                    .select_from(Notification)
                    .where(
                        Notification.template == "order_confirmation", Notification.status == "sent"
                    )
                )
            )

        while sent() < len(ids) and time.monotonic() - recovered < args.deadline_s:
            _pause.wait(1.0)
        drained = time.monotonic() - recovered
        received = smtp.messages(raw=False)
        distinct = {m["message_id"] for m in received}
        with session_scope() as s:
            expected = set(
                s.scalars(
                    select(Notification.provider_message_id).where(
                        Notification.template == "order_confirmation"
                    )
                )
            )
            max_attempts = s.scalar(select(func.max(Notification.attempts)))
            failed = s.scalar(
                select(func.count())
                .select_from(Notification)
                .where(Notification.status == "failed")
            )
        print(
            f"RESULT orders={len(ids)} outage_s={args.outage_s:.0f} orders_completed_during_outage_s="
            f"{completed_at if completed_at is not None else -1:.1f} last_email_after_recovery_s={drained:.1f} "
            f"emails_received={len(received)} distinct_message_ids={len(distinct)} "
            f"lost={len(ids) - len(distinct & expected)} duplicates={len(received) - len(distinct)} "
            f"failed={failed} max_attempts={max_attempts}"
        )
        return 0 if len(distinct & expected) == len(ids) and len(received) == len(distinct) else 1
    finally:
        worker.stop()
        for party in (*parties.values(), smtp, sms):
            party.stop()


if __name__ == "__main__":
    sys.exit(main())
