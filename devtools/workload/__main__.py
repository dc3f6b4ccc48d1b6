"""``python -m devtools.workload``: the main job.

Makes a fresh vhost and database, migrates, starts real ``dramatiq actors`` workers, seeds the
shop, sends every scenario's jobs, shows progress, prints a summary from the ledger, stops what
it started, and exits 1 if any job was lost (not finished by the deadline) or failed unexpectedly.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
from typing import Any

VHOST = os.environ.get("SHOPJOBS_MAIN_VHOST", "shopjobs_main")
DATABASE_URL = os.environ.get(
    "SHOPJOBS_MAIN_DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/shopjobs_main"
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--deadline", type=float, default=300, help="seconds for every job to finish")
    ap.add_argument("--seed", type=int, default=7)
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

    parties = {name: start_stand_in(name, log_path=f".run/{name}.log") for name in ("payments", "warehouse", "carrier")}
    os.environ["SHOPJOBS_PAYMENT_URL"] = parties["payments"].url
    os.environ["SHOPJOBS_WAREHOUSE_URL"] = parties["warehouse"].url
    os.environ["SHOPJOBS_CARRIER_URL"] = parties["carrier"].url
    parties["payments"].set_faults(mode="http_503", rate=0.05, paths=["/v1/charges"])

    import broker
    from devtools.processes import Worker
    from devtools.workload import metrics_check, scenarios, summary
    from devtools.workload.seed import seed

    rng = random.Random(args.seed)
    from shop.scheduling.process import start_scheduler
    from shop.scheduling.summary import fires_summary

    metrics_port = metrics_check.free_port()
    worker = Worker(("actors",), processes=args.processes, threads=args.threads, log_path=".run/workers.log",
                    env={"SHOPJOBS_METRICS_PORT": str(metrics_port)})
    scraped = None
    scheduler = None
    started = time.monotonic()
    sent: list[scenarios.Sent] = []
    ids: list[str] = []
    try:
        worker.wait_ready()
        print(f"== workers ready: {args.processes} processes x {args.threads} threads (log: .run/workers.log); "
              f"stand-ins: " + ", ".join(f"{n} {p.url}" for n, p in parties.items()), flush=True)
        scheduler = start_scheduler(
            extra_env={"SHOPJOBS_SCHEDULE_MODULE": "devtools.workload.schedule"}, log_path=".run/scheduler.log"
        )
        print(f"== scheduler running (pid {scheduler.pid}, log: .run/scheduler.log)", flush=True)
        seeded = seed(rng)
        print(f"== seeded {len(seeded.user_ids)} customers, {len(seeded.product_ids)} products, "
              f"{len(seeded.order_ids)} past orders", flush=True)
        for number, phase in enumerate(scenarios.phases(), 1):
            print(f"== phase {number}", flush=True)
            for scenario in phase:
                batch = scenario(rng, seeded)
                sent.append(batch)
                ids.extend(batch.message_ids)
                print(f"   sent {len(batch.message_ids):5d}  {batch.name}", flush=True)
            broker.flush_ledger()
            snap = _wait(ids, args.deadline, started)
        scheduler.stop()
        scheduler = None
        snap = _wait(ids, args.deadline, started)  # the last fires' jobs
        print(summary.workers_line(), flush=True)
        scraped = metrics_check.scrape(metrics_port)
    finally:
        if scheduler is not None:
            scheduler.stop()
        worker.stop()
        for party in parties.values():
            party.stop()
        stop_catalog()
    print("== summary")
    for line in summary.report():
        print(line)
    print(f"metrics (workers' /metrics on 127.0.0.1:{metrics_port}):")
    print("\n".join(metrics_check.report(scraped)))
    print("scheduler:")
    for line in fires_summary():
        print(f"  {line}")
    expected = sum(s.expected_failures + s.expected_failures_later for s in sent)
    failed = snap.states.get("failed", 0) + snap.states.get("dead", 0)
    lost = snap.total - snap.finished
    print(f"lost jobs: {lost}; failures: {failed} (expected from deliberate bad input, declines, sold-out stock: {expected})")
    stranded_messages, stranded_orders = _stranded(set(seeded.order_ids))
    print(f"stranded messages: {stranded_messages} (unpublished or lost for over {STRANDED_AFTER_S} s); "
          f"stranded orders: {stranded_orders} (not settled, no job pending; seeded ones aside)")
    if lost or failed != expected or stranded_messages:
        print("MAIN JOB FAILED", file=sys.stderr)
        return 1
    print("MAIN JOB OK")
    return 0


STRANDED_AFTER_S = 30


def _stranded(seeded_orders: set[int]) -> tuple[int, int]:
    """Stranded sends (``jobs stranded``) and the workload's stranded orders, when it ends.

    Seeded orders are left out: the seed writes past orders without jobs on purpose. Stranded
    orders are reported, not failed on yet: an operator's cancel of a pipeline step strands its
    order by design (the order keeps its status).
    """
    from jobcore.db import session_scope
    from jobcore.ledger import stranded
    from shop.orders.stranded import stranded_orders

    def workload_orders(session: Any, older_than_s: float) -> list[dict[str, Any]]:
        return [r for r in stranded_orders(session, older_than_s) if r["order_id"] not in seeded_orders]

    with session_scope() as s:
        found = stranded.find(s, STRANDED_AFTER_S, checks={"orders": workload_orders})
    counts = found.counts
    return counts["unpublished"] + counts["lost"], counts["orders"]


def _wait(ids: list[str], deadline_s: float, started: float):
    from devtools.workload import summary

    pause = threading.Event()
    deadline = time.monotonic() + deadline_s
    last_print = 0.0
    while True:
        snap = summary.snapshot(ids)
        now = time.monotonic()
        done = snap.finished == snap.total
        if done or now - last_print >= 1.0 or now > deadline:
            print(summary.progress_line(snap, now - started), flush=True)
            last_print = now
        if done or now > deadline:
            return snap
        pause.wait(0.2)


if __name__ == "__main__":
    sys.exit(main())
