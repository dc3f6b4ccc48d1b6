"""Catalogue rows about bad input beside real orders: T9 (malformed bodies), T10 (unknown actor,
wrong queue), T11 (oversized payloads), T19 (hostile arguments)."""

from __future__ import annotations

import json
import os
import time
import uuid
from typing import Any

import pika
from sqlalchemy import func, select, text

from devtools.chaos import load as shop_load
from devtools.chaos.harness import Harness, Outcome, ledger_count, when
from devtools.chaos.scenarios import BACKOFF
from jobcore import amqp, outbox
from jobcore.db import session_scope
from jobcore.models import DeadLetter, LedgerEntry
from shop.models import InventoryReservation, Order

MIB = 1024 * 1024


def publish_raw(queue: str, bodies: list[bytes]) -> None:
    """Publish bodies straight into a queue, as a buggy client would (confirmed, persistent)."""
    conn = amqp.connect(os.environ["SHOPJOBS_AMQP_URL"])
    try:
        channel = conn.channel()
        channel.confirm_delivery()
        for body in bodies:
            channel.basic_publish("", queue, body, pika.BasicProperties(delivery_mode=2))
    finally:
        conn.close()


def _message(actor: str, queue: str, args: list[Any]) -> bytes:
    return json.dumps(
        {
            "queue_name": queue,
            "actor_name": actor,
            "args": args,
            "kwargs": {},
            "options": {},
            "message_id": str(uuid.uuid4()),
            "message_timestamp": int(time.time() * 1000),
        }
    ).encode()


def _dead_letters(orders: list[int] | None = None) -> int:
    """Dead letters stored; with ``orders``, only those that are not of those orders' own jobs
    (a declined or failed order job's dead letter is business as usual beside the malformed)."""
    with session_scope() as s:
        query = select(func.count()).select_from(DeadLetter)
        if orders:
            of_orders = select(LedgerEntry.message_id).where(LedgerEntry.order_id.in_(orders))
            query = query.where(
                DeadLetter.message_id.is_(None) | DeadLetter.message_id.not_in(of_orders)
            )
        return int(s.scalar(query) or 0)


def malformed_bodies(h: Harness, orders: int, per_kind: int = 20) -> Outcome:
    """T9: not UTF-8, truncated JSON, wrong shapes and 10 MB of nesting, into every order queue."""
    load = shop_load.Load()
    products = shop_load.catalogue(load, h.rng)
    worker = h.workers("t9", env=BACKOFF)
    before = worker.worker_pids()
    shop_load.orders(load, h.rng, orders // 2, products)
    good = _message("orders.process_order_async", "orders", [1])
    kinds = {
        "not utf-8": [b"\xff\xfe\x00\x9c garbage"] * per_kind,
        "truncated json": [good[: len(good) // 2]] * per_kind,
        "wrong shapes": [
            json.dumps(
                {
                    "queue_name": "orders",
                    "actor_name": 5,
                    "args": "x",
                    "kwargs": [],
                    "options": 1,
                    "message_id": n,
                    "message_timestamp": "t",
                }
            ).encode()
            for n in range(per_kind)
        ],
        "10 MB nesting": [b"[" * (5 * MIB) + b"]" * (5 * MIB)] * 2,
    }
    sent = 0
    for n, bodies in enumerate(kinds.values()):
        publish_raw(("orders", "payments", "inventory", "notifications")[n], bodies)
        sent += len(bodies)
    shop_load.orders(load, h.rng, orders - orders // 2, products)
    when(
        lambda: _dead_letters(load.order_ids) >= sent,
        h.drain_timeout_s,
        f"{sent} dead letters stored",
    )
    evidence = {
        "published": sent,
        "dead_letters": _dead_letters(load.order_ids),
        "order_jobs_dead_lettered": _dead_letters() - _dead_letters(load.order_ids),
        "same_processes": worker.worker_pids() == before,
        "consumer_restarts": worker.log().count("Restarting consumer"),
    }
    return h.finish(
        "T9", "malformed bodies into the queues", load, sent, evidence, time.monotonic(), worker
    )


def misrouted(h: Harness, orders: int) -> Outcome:
    """T10: a message for an actor nobody declares; a real actor's message on another's queue."""
    load = shop_load.Load()
    products = shop_load.catalogue(load, h.rng)
    worker = h.workers("t10", env=BACKOFF)
    shop_load.orders(load, h.rng, orders, products)
    # an order that was never sent: a misrouted step must not touch it
    (victim,) = shop_load.orders(
        shop_load.Load(user_ids=load.user_ids), h.rng, 1, products, send=False
    )
    publish_raw("orders", [_message("orders.no_such_actor", "orders", [victim])])
    publish_raw("payments", [_message("orders.reserve_inventory", "payments", [victim])])
    when(lambda: _dead_letters() >= 2 or bool(_reserved(victim)), h.drain_timeout_s, "both handled")
    with session_scope() as s:
        reasons = sorted(s.scalars(select(DeadLetter.reason)))
        attempts = sorted(
            s.scalars(select(LedgerEntry.attempts).where(LedgerEntry.order_id == victim))
        )
    evidence = {
        "dead_letter_reasons": reasons,
        "victim_reserved": _reserved(victim),
        "victim_attempts": attempts,
    }
    return h.finish(
        "T10",
        "unknown actor; real actor on a wrong queue",
        load,
        2,
        evidence,
        time.monotonic(),
        worker,
    )


def _reserved(order_id: int) -> int:
    with session_scope() as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(InventoryReservation)
                .where(InventoryReservation.order_id == order_id)
            )
            or 0
        )


def oversized(h: Harness, orders: int) -> Outcome:
    """T11: a 1 MiB + 1 argument through the producer; a 2 MiB body for the relay."""
    load = shop_load.Load()
    products = shop_load.catalogue(load, h.rng)
    worker = h.workers("t11", env=BACKOFF)
    refused_at_once, written = False, 0
    started = time.monotonic()
    try:
        with session_scope() as s:
            outbox.enqueue(s, "orders.cancel_order_async", 1, "x" * (MIB + 1))
    except Exception:  # noqa: BLE001  (what the producer refuses with is its own business)
        refused_at_once = time.monotonic() - started < 1
    with session_scope() as s:
        written = int(s.scalar(text("SELECT count(*) FROM outbox")) or 0)
    shop_load.orders(load, h.rng, orders, products)
    evidence = {"producer_refused_at_once": refused_at_once, "rows_written_for_it": written}
    return h.finish("T11", "oversized payloads", load, 1, evidence, time.monotonic(), worker)


HOSTILE: list[Any] = [
    "1; DROP TABLE orders; --",
    "1\x00",
    "x" * 1_000_000,  # 1 MB: under the producer's 1 MiB limit, so the job must refuse it
    float("nan"),
    float("inf"),
    12.5,
    {"$gt": 0},
    [1, 2],
    -1,
    2**64,
    True,
    None,
]


def hostile_arguments(h: Harness, orders: int) -> Outcome:
    """T19: SQL text, NUL, 1 MB strings, NaN, Infinity, floats, nested objects as an order id."""
    load = shop_load.Load()
    products = shop_load.catalogue(load, h.rng)
    worker = h.workers("t19", env=BACKOFF)
    with session_scope() as s:
        tables = s.scalar(text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"))
        statuses = dict(s.execute(select(Order.status, func.count()).group_by(Order.status)).all())
    ids = []
    with session_scope() as s:
        for value in HOSTILE:
            ids.append(outbox.enqueue(s, "orders.process_order_async", value))
    shop_load.orders(load, h.rng, orders, products)
    when(
        lambda: ledger_count(message_id=ids, state=["failed", "dead", "succeeded"]) == len(ids),
        h.drain_timeout_s,
        "every hostile message settled",
    )
    with session_scope() as s:
        settled = dict(
            s.execute(
                select(LedgerEntry.state, func.count())
                .where(LedgerEntry.message_id.in_(ids))
                .group_by(LedgerEntry.state)
            ).all()
        )
        attempts = max(
            s.scalars(select(LedgerEntry.attempts).where(LedgerEntry.message_id.in_(ids)))
        )
        tables_after = s.scalar(text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"))
        untouched = dict(
            s.execute(
                select(Order.status, func.count())
                .where(Order.id.not_in(load.order_ids))
                .group_by(Order.status)
            ).all()
        )
    evidence = {
        "hostile": len(ids),
        "states": settled,
        "max_attempts": attempts,
        "schema_unchanged": tables == tables_after,
        "other_orders_unchanged": untouched == statuses,
    }
    return h.finish("T19", "hostile arguments", load, len(ids), evidence, time.monotonic(), worker)
