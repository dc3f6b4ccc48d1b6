"""The order pipeline on real workers, RabbitMQ, PostgreSQL and the HTTP stand-ins."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select

from actors.orders import process_order_async
from jobcore.db import session_scope
from jobcore.ledger import queries as ledger_queries
from jobcore.models import LedgerEntry
from shop.models import Inventory, InventoryReservation, Notification, Order, Payment
from tests.support.factories import make_order, make_product, make_user
from tests.support.waiting import wait_until

FINAL = ("completed", "cancelled")
WORKER = {"processes": 2, "threads": 8}


def _orders(
    count: int, stock: int, quantity: int = 1, token: str = "tok_visa"
) -> tuple[list[int], int]:
    with session_scope() as s:
        product = make_product(s, stock=stock, price_cents=2500)
        users = [make_user(s) for _ in range(20)]
        ids = [
            make_order(s, user=users[i % 20], lines=[(product, quantity)], payment_token=token).id
            for i in range(count)
        ]
        return ids, product.id


def _statuses(ids: list[int]) -> Counter[str]:
    with session_scope() as s:
        return Counter(s.scalars(select(Order.status).where(Order.id.in_(ids))))


def _wait_final(ids: list[int], timeout: float = 180) -> Counter[str]:
    def done():
        statuses = _statuses(ids)
        return statuses if sum(statuses[k] for k in FINAL) == len(ids) else None

    return wait_until(done, timeout, interval=0.25, what="every order completed or cancelled")


def _provider_ledger(stand_ins) -> dict:
    return stand_ins["payments"].ledger()


def _captures_per_order(ledger: dict) -> Counter[int]:
    return Counter(c["order_id"] for c in ledger["charges"] if c["status"] == "captured")


def _stock_is_conserved(product_id: int, initial: int) -> None:
    with session_scope() as s:
        inv = s.get(Inventory, product_id)
        held = s.scalar(
            select(func.coalesce(func.sum(InventoryReservation.quantity), 0)).where(
                InventoryReservation.product_id == product_id,
                InventoryReservation.released_at.is_(None),
            )
        )
    assert inv.available >= 0
    assert initial - inv.available == held == inv.reserved


def test_200_orders_complete_with_one_capture_each_and_stock_conserved(stand_ins, start_worker):
    # Given 200 orders for a product with plenty of stock, and workers with 2 processes x 8 threads
    ids, product_id = _orders(200, stock=1000)
    start_worker("actors", **WORKER)

    # When every order is sent into the pipeline
    for order_id in ids:
        process_order_async.send(order_id)

    # Then every one completes, the provider captured exactly once per order, stock is conserved
    assert _wait_final(ids) == Counter({"completed": 200})
    assert _captures_per_order(_provider_ledger(stand_ins)) == Counter({i: 1 for i in ids})
    _stock_is_conserved(product_id, 1000)
    with session_scope() as s:
        assert (
            s.scalar(
                select(func.count())
                .select_from(Notification)
                .where(Notification.template == "order_confirmation")
            )
            == 200
        )


def test_1000_orders_for_100_in_stock_reserve_exactly_100_and_refund_the_rest(
    stand_ins, start_worker
):
    ids, product_id = _orders(1000, stock=100)
    start_worker("actors", **WORKER)
    for order_id in ids:
        process_order_async.send(order_id)

    statuses = _wait_final(ids, timeout=400)
    assert statuses == Counter({"completed": 100, "cancelled": 900})
    _stock_is_conserved(product_id, 100)
    ledger = _provider_ledger(stand_ins)
    order_of_charge = {c["id"]: c["order_id"] for c in ledger["charges"]}
    refunds = Counter(order_of_charge[r["charge_id"]] for r in ledger["refunds"])
    with session_scope() as s:
        cancelled = set(
            s.scalars(select(Order.id).where(Order.id.in_(ids), Order.status == "cancelled"))
        )
        reasons = set(s.scalars(select(Order.cancel_reason).where(Order.id.in_(cancelled))))
        payments = Counter(s.scalars(select(Payment.status).where(Payment.order_id.in_(cancelled))))
    assert refunds == Counter({i: 1 for i in cancelled})
    assert payments == Counter({"refunded": 900})
    assert all("OutOfStock" in r for r in reasons)


def test_a_provider_that_times_out_after_charging_still_charges_each_order_once(
    stand_ins, start_worker
):
    # Given the provider charges but never answers 10% of charge calls
    stand_ins["payments"].set_faults(mode="timeout_after_charge", rate=0.1, paths=["/v1/charges"])
    ids, _ = _orders(60, stock=1000)
    start_worker("actors", env={"SHOPJOBS_HTTP_TIMEOUT_S": "1"}, **WORKER)
    for order_id in ids:
        process_order_async.send(order_id)

    assert _wait_final(ids) == Counter({"completed": 60})
    assert _captures_per_order(_provider_ledger(stand_ins)) == Counter({i: 1 for i in ids})
    with session_scope() as s:
        retried = s.scalar(
            select(func.count())
            .select_from(LedgerEntry)
            .where(LedgerEntry.actor == "payments.validate_payment", LedgerEntry.attempts > 1)
        )
    assert retried >= 1  # the fault really happened: some charge calls timed out and were retried


def test_every_message_published_twice_has_one_effect_and_duplicates_show_as_skipped(
    stand_ins, start_worker
):
    ids, product_id = _orders(40, stock=1000)
    start_worker("actors", "tests.support.duplicating", **WORKER)
    for order_id in ids:
        process_order_async.send(order_id)

    assert _wait_final(ids) == Counter({"completed": 40})
    assert _captures_per_order(_provider_ledger(stand_ins)) == Counter({i: 1 for i in ids})
    _stock_is_conserved(product_id, 1000)

    def duplicates_recorded():
        with session_scope() as s:
            return s.scalar(select(func.coalesce(func.sum(LedgerEntry.duplicates), 0)))

    # each step's copy was skipped: 40 orders x 4 pipeline steps
    assert wait_until(lambda: duplicates_recorded() >= 160, what="skipped duplicates recorded")
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Notification)) == 40


def test_a_declined_card_cancels_the_order_and_its_history_shows_where_it_stopped(
    stand_ins, start_worker
):
    ids, product_id = _orders(1, stock=5, token="tok_decline")
    start_worker("actors")
    process_order_async.send(ids[0])

    assert _wait_final(ids) == Counter({"cancelled": 1})
    wait_until(
        lambda: _history(ids[0]).get("orders.compensate_order") == "succeeded", what="compensated"
    )
    history = _history(ids[0])
    assert history["payments.validate_payment"] == "failed"
    assert "orders.reserve_inventory" not in history
    with session_scope() as s:
        order = s.get(Order, ids[0])
        assert "declined" in order.cancel_reason
        assert s.get(Inventory, product_id).available == 5
        assert (
            s.scalar(
                select(Notification.template).where(Notification.entity_key == f"order:{ids[0]}")
            )
            == "order_cancelled"
        )


def _history(order_id: int) -> dict[str, str]:
    with session_scope() as s:
        return {row.actor: row.state for row in ledger_queries.history_of_order(s, order_id)}


def test_a_charge_that_always_timed_out_is_found_by_its_key_and_refunded_on_compensation(
    stand_ins, start_worker
):
    # Given a provider that takes every charge but never answers in time
    stand_ins["payments"].set_faults(mode="timeout_after_charge", rate=1.0, paths=["/v1/charges$"])
    ids, product_id = _orders(3, stock=10)
    start_worker("actors", env={"SHOPJOBS_HTTP_TIMEOUT_S": "1"}, **WORKER)
    for order_id in ids:
        process_order_async.send(order_id)

    # When payment validation gives up and the pipeline compensates
    assert _wait_final(ids, timeout=120) == Counter({"cancelled": 3})

    # Then compensation asked the provider by key, found each charge, and refunded it in full
    ledger = _provider_ledger(stand_ins)
    charges = {c["order_id"]: c for c in ledger["charges"]}
    assert sorted(charges) == sorted(ids)
    refunded = ledger["refunds"]  # compensation refunds before it marks the order cancelled
    assert sorted((r["charge_id"], r["amount_cents"]) for r in refunded) == sorted(
        (c["id"], c["amount_cents"]) for c in charges.values()
    )
    with session_scope() as s:
        assert set(s.scalars(select(Payment.status).where(Payment.order_id.in_(ids)))) == {
            "refunded"
        }
        attempts = s.scalars(
            select(LedgerEntry.attempts).where(LedgerEntry.actor == "payments.validate_payment")
        )
        assert all(a == 7 for a in attempts)  # the fault really happened: every attempt timed out
    _stock_is_conserved(product_id, 10)
