"""Refunds, cancellation, tracking, webhooks and bad input to the order and payment actors."""

from __future__ import annotations

import json
import math
import time

import httpx
import pytest
from sqlalchemy import func, select

from actors.orders import cancel_order_async, process_order_async, update_order_tracking
from actors.payments import process_refund_async
from jobcore.db import session_scope
from jobcore.models import LedgerEntry, OutboxMessage
from shop.models import Order, Payment, PaymentEvent, Refund
from shop.payments import webhook_signing
from tests.support.factories import make_order, make_product
from tests.support.ledger import entry
from tests.support.waiting import wait_until
from tests.support.webhook_endpoint import WebhookEndpoint

SECRET = "whsec_dev_only"


def _completed_order(stand_ins, start_worker) -> int:
    with session_scope() as s:
        order_id = make_order(s, lines=[(make_product(s, stock=10, price_cents=5000), 2)]).id
    start_worker("actors")
    process_order_async.send(order_id)
    wait_until(lambda: _order(order_id).status == "completed", what="order completed")
    return order_id


def _order(order_id: int) -> Order:
    with session_scope() as s:
        return s.get(Order, order_id)


def _payment(order_id: int) -> Payment:
    with session_scope() as s:
        return s.scalars(select(Payment).where(Payment.order_id == order_id)).one()


def _final(message_id: str) -> LedgerEntry:
    return wait_until(
        lambda: (e := entry(message_id)) and e.state in ("succeeded", "failed", "skipped") and e,
        what=f"{message_id} finished",
    )


def test_partial_refunds_never_add_up_to_more_than_was_captured(stand_ins, start_worker):
    order_id = _completed_order(stand_ins, start_worker)
    payment = _payment(order_id)
    assert payment.amount_cents == 10000

    first = _final(process_refund_async.send(payment.id, 6000, "one item broken").message_id)
    too_much = _final(
        process_refund_async.send(payment.id, 5000, "customer asks for more").message_id
    )
    rest = _final(process_refund_async.send(payment.id, 4000, "second item").message_id)

    assert (first.state, too_much.state, rest.state) == ("succeeded", "failed", "succeeded")
    assert too_much.attempts == 1 and "RefundNotAllowed" in too_much.error
    assert _payment(order_id).refunded_cents == 10000 and _payment(order_id).status == "refunded"
    ledger = stand_ins["payments"].ledger()
    assert sorted(r["amount_cents"] for r in ledger["refunds"]) == [4000, 6000]


def test_cancelling_a_paid_order_refunds_it_and_releases_stock(stand_ins, start_worker):
    with session_scope() as s:
        product = make_product(s, stock=3)
        order_id = make_order(s, lines=[(product, 2)]).id
        product_id = product.id
    start_worker("actors")
    from actors.orders import reserve_inventory
    from actors.payments import validate_payment

    _final(validate_payment.send(order_id).message_id)
    _final(reserve_inventory.send(order_id).message_id)
    cancelled = _final(cancel_order_async.send(order_id, "customer changed their mind").message_id)
    assert cancelled.state == "succeeded"
    order = _order(order_id)
    assert order.status == "cancelled" and order.cancel_reason == "customer changed their mind"
    assert _payment(order_id).status == "refunded"
    from shop.models import Inventory

    with session_scope() as s:
        assert s.get(Inventory, product_id).available == 3


def test_tracking_is_fetched_from_the_carrier_and_a_delivery_check_is_scheduled(
    stand_ins, start_worker
):
    order_id = _completed_order(stand_ins, start_worker)
    message_id = update_order_tracking.send(order_id, "TRACK123").message_id
    assert _final(message_id).state == "succeeded"
    order = _order(order_id)
    assert (
        order.status == "shipped" and order.tracking_number == "TRACK123" and order.tracking_status
    )
    with session_scope() as s:
        check = s.scalars(
            select(LedgerEntry).where(LedgerEntry.actor == "orders.check_delivery")
        ).one()
    assert check.order_id == order_id and check.eta is not None and check.state == "scheduled"


@pytest.mark.parametrize(
    ("actor", "args"),
    [
        (process_order_async, (999_999,)),
        (process_order_async, (-1,)),
        (process_order_async, ("12",)),
        (process_order_async, (1.5,)),
        (process_refund_async, (1, math.nan, "nan")),
        (process_refund_async, (1, 10.5, "float")),
        (process_refund_async, (1, -100, "negative")),
        (cancel_order_async, (1, "")),
    ],
)
def test_bad_input_is_a_permanent_error_with_no_retry_and_no_effect(
    stand_ins, start_worker, actor, args
):
    start_worker("actors")
    row = _final(actor.send(*args).message_id)
    assert row.state == "failed" and row.attempts == 1
    assert row.error.startswith(("InvalidInput", "NotFound"))
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Payment)) == 0
        assert s.scalar(select(func.count()).select_from(Refund)) == 0


@pytest.fixture()
def webhook_endpoint(stand_ins):
    endpoint = WebhookEndpoint()
    yield endpoint
    endpoint.stop()


def _signed(body: bytes, secret: str = SECRET, at: int | None = None) -> dict[str, str]:
    at = int(time.time()) if at is None else at
    return {
        webhook_signing.HEADER: webhook_signing.sign(secret, body, at),
        "content-type": "application/json",
    }


def _db_writes() -> tuple[int, int]:
    with session_scope() as s:
        return (
            s.scalar(select(func.count()).select_from(PaymentEvent)),
            s.scalar(select(func.count()).select_from(OutboxMessage)),
        )


def test_forged_tampered_stale_and_replayed_webhooks_are_rejected_without_writes(webhook_endpoint):
    url = webhook_endpoint.url + "/webhooks/standin"
    body = json.dumps({"id": "evt_1", "type": "charge.succeeded", "data": {"order_id": 1}}).encode()
    stale_at = int(time.time()) - 301
    attempts = [
        (body, _signed(body, secret="whsec_attacker")),  # forged
        (body.replace(b"evt_1", b"evt_2"), _signed(body)),  # tampered after signing
        (body, _signed(body, at=stale_at)),  # stale: 301 s old
        (body, {"content-type": "application/json"}),  # unsigned
    ]
    for payload, headers in attempts:
        response = httpx.post(url, content=payload, headers=headers, timeout=10)
        assert 400 <= response.status_code < 500, response.text
    assert _db_writes() == (0, 0)


def test_a_valid_webhook_replayed_ten_times_has_one_effect(webhook_endpoint, start_worker):
    with session_scope() as s:
        order = make_order(s, lines=[(make_product(s, stock=5), 1)])
        s.add(
            Payment(
                order_id=order.id,
                idempotency_key=f"order-{order.id}",
                amount_cents=order.total_cents,
            )
        )
        order_id = order.id
    start_worker("actors")
    body = json.dumps(
        {"id": "evt_42", "type": "charge.succeeded", "data": {"id": "ch_42", "order_id": order_id}}
    ).encode()
    headers = _signed(body)
    answers = [
        httpx.post(
            webhook_endpoint.url + "/webhooks/standin", content=body, headers=headers, timeout=10
        ).json()
        for _ in range(10)
    ]
    assert [a["status"] for a in answers].count("accepted") == 1
    wait_until(
        lambda: _payment(order_id).status == "captured", what="payment captured by the webhook"
    )
    with session_scope() as s:
        events = s.scalars(select(PaymentEvent)).all()
        assert len(events) == 1
        wait_until(
            lambda: s.scalar(select(PaymentEvent.processed_at)) is not None, what="event processed"
        )
        handled = s.scalar(
            select(func.count())
            .select_from(LedgerEntry)
            .where(LedgerEntry.actor == "payments.handle_payment_webhook")
        )
    assert handled == 1
