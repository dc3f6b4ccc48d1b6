"""RabbitMQ stopped twice for 10 s while orders run: nothing is lost, nothing is stranded.

The outage is RabbitMQ as its clients see it stopped: a TCP proxy between them and the broker
drops every connection and refuses new ones for 10 s (so the machine's shared broker keeps
serving other tests). ``SHOPJOBS_TEST_STOP_RABBITMQ=1`` stops the real broker instead
(``rabbitmqctl stop_app``, ``start_app`` in a finally): run it alone (marker ``serial``).
"""

from __future__ import annotations

import email
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pika
import pytest
from sqlalchemy import select, text

import broker as shop_broker
from devtools import devservices, faults
from jobcore import outbox
from jobcore.db import session_scope
from jobcore.ledger import stranded
from shop.models import Order
from shop.orders.stranded import stranded_orders
from tests.support.factories import make_order, make_product, make_user
from tests.support.notify import notify_parties  # noqa: F401  (a fixture)
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import wait_until

ORDERS = 500
THIRD = ORDERS // 3
OUTAGE_S = 10.0
_pause = threading.Event()  # never set: waits out the fault's duration, not work


def _send(ids: list[int]) -> None:
    """A service's send: through the outbox, in its own transaction."""
    with session_scope() as s:
        for order_id in ids:
            outbox.enqueue(s, "orders.process_order_async", order_id)


@pytest.fixture()
def outage(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Callable[[], Any], dict[str, str]]]:
    """(a context manager that is the outage, the environment workers need to feel it)."""
    if os.environ.get("SHOPJOBS_TEST_STOP_RABBITMQ") == "1":
        yield faults.rabbitmq_stopped, {}
        return
    host, port = devservices.address("rabbitmq")
    proxy = TcpProxy((host, port))
    url = os.environ["SHOPJOBS_AMQP_URL"].replace(f"{host}:{port}", proxy.address)
    # this process's producer goes through the proxy too: its sends feel the outage
    monkeypatch.setattr(shop_broker.broker, "parameters", pika.URLParameters(url))
    del shop_broker.broker.connection
    try:
        yield proxy.outage, {"SHOPJOBS_AMQP_URL": url}
    finally:
        proxy.close()
        del shop_broker.broker.connection


def _send_during_outage(outage: Callable[[], Any], ids: list[int]) -> int:
    """Take the broker away, keep sending orders for OUTAGE_S seconds, bring it back; returns
    how many committed sends were still unpublished when it came back (the fault's evidence)."""
    with outage():
        sent, deadline = 0, time.monotonic() + OUTAGE_S
        while time.monotonic() < deadline:
            if sent < len(ids):
                _send(ids[sent : sent + 10])  # must not raise while the broker is down
                sent += 10
            _pause.wait(0.2)
        _send(ids[sent:])
        with session_scope() as s:
            return int(s.execute(text("SELECT count(*) FROM outbox")).scalar())


@pytest.fixture()
def smtp(notify_parties: Any, clean: None) -> Any:  # noqa: F811  (the fixture above)
    """The SMTP stand-in, emptied: e-mails are part of what must arrive once."""
    notify_parties[0].reset()
    return notify_parties[0]


@pytest.mark.serial
@pytest.mark.long_fault  # its catalogue row T3 (tests/chaos, in CI) covers it in CI's budget
@pytest.mark.timeout(600)  # 500 orders on a shared 2-core machine, two outages
def test_orders_run_through_two_broker_outages_with_none_stranded(
    stand_ins, smtp, start_worker, outage
):
    # Given 500 orders and workers whose relay takes over a failed after-commit publish after 3 s
    with session_scope() as s:
        product = make_product(s, stock=10_000, price_cents=1500)
        users = [make_user(s) for _ in range(10)]
        ids = [
            make_order(s, user=users[i % 10], lines=[(product, 1)], payment_token="tok_visa").id
            for i in range(ORDERS)
        ]
    take_away, env = outage
    start_worker(
        "actors", processes=2, threads=8, env={"SHOPJOBS_OUTBOX_RELAY_AFTER_S": "3", **env}
    )

    # When a third is sent, then RabbitMQ stops for 10 s while the next third is sent, and
    # again for the last third
    _send(ids[:THIRD])
    held_back = [_send_during_outage(take_away, ids[THIRD : 2 * THIRD])]
    _pause.wait(OUTAGE_S)
    held_back.append(_send_during_outage(take_away, ids[2 * THIRD :]))
    assert min(held_back) >= 100, held_back  # the broker really was away: nothing got out

    # Then every order completes, each captured once, and nothing is stranded or left behind
    def completed() -> Counter[str] | None:
        with session_scope() as s:
            found = Counter(s.scalars(select(Order.status).where(Order.id.in_(ids))))
        return found if found["completed"] + found["cancelled"] == ORDERS else None

    assert wait_until(completed, timeout=420, interval=0.5, what="every order settled") == Counter(
        {"completed": ORDERS}
    )
    captures = Counter(
        c["order_id"]
        for c in stand_ins["payments"].ledger()["charges"]
        if c["status"] == "captured"
    )
    assert captures == Counter({i: 1 for i in ids})

    def settled() -> bool:
        with session_scope() as s:
            pending = s.execute(
                text(
                    "SELECT count(*) FROM job_ledger"
                    " WHERE state IN ('scheduled', 'enqueued', 'running', 'retrying')"
                    " AND (eta IS NULL OR eta < now())"
                )
            ).scalar()
            found = stranded.find(s, 0)
            return pending == 0 and found.counts["unpublished"] == 0 and found.counts["lost"] == 0

    wait_until(settled, timeout=60, interval=0.5, what="no job pending, nothing stranded")
    with session_scope() as s:
        orders_stranded = stranded_orders(s, 0)
    assert orders_stranded == []
    # every e-mail (an order confirmation per order, at least) was delivered once
    per_message_id = Counter(
        email.message_from_string(m["raw"])["Message-ID"] for m in smtp.messages()
    )
    assert len(per_message_id) >= ORDERS and set(per_message_id.values()) == {1}
