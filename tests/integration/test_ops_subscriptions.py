"""Subscription renewals on real workers: once per (subscription, due date), pipeline started."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from sqlalchemy import func, select

from actors import subscriptions as sub_actors
from jobcore.db import session_scope
from jobcore.models import LedgerEntry
from shop.models import Notification, OpsRun, Order, Subscription, SubscriptionDelivery
from shop.settings import Settings
from shop.subscriptions.dates import next_delivery
from shop.subscriptions.subscriptions import local_today
from tests.support.factories import make_product, make_user
from tests.support.waiting import wait_until

DUE = 24


def _subscriptions(today: dt.date) -> dict[str, list[int]]:
    with session_scope() as s:
        product = make_product(s, stock=1000, price_cents=1500)
        sold_out = make_product(s, stock=0)
        users = [make_user(s) for _ in range(6)]
        made: dict[str, list[Subscription]] = {
            "due": [],
            "paused": [],
            "tomorrow": [],
            "sold_out": [],
        }
        for i in range(DUE):
            made["due"].append(
                Subscription(
                    user_id=users[i % 6].id,
                    product_id=product.id,
                    quantity=1 + i % 2,
                    frequency="weekly" if i % 2 else "monthly",
                    next_delivery_date=today,
                )
            )
        made["paused"] = [
            Subscription(
                user_id=users[0].id,
                product_id=product.id,
                frequency="weekly",
                status="paused",
                next_delivery_date=today,
            )
            for _ in range(3)
        ]
        made["tomorrow"] = [
            Subscription(
                user_id=users[1].id,
                product_id=product.id,
                frequency="monthly",
                next_delivery_date=today + dt.timedelta(days=1),
            )
            for _ in range(4)
        ]
        made["sold_out"] = [
            Subscription(
                user_id=users[2].id,
                product_id=sold_out.id,
                frequency="weekly",
                next_delivery_date=today,
            )
        ]
        for group in made.values():
            s.add_all(group)
        s.flush()
        return {k: [x.id for x in v] for k, v in made.items()}


def _finished(actor: str) -> Counter[str]:
    with session_scope() as s:
        return Counter(s.scalars(select(LedgerEntry.state).where(LedgerEntry.actor == actor)))


def test_a_daily_run_sent_twice_concurrently_renews_each_due_subscription_once(
    stand_ins, start_worker
):
    # Given due, paused, tomorrow's and sold-out subscriptions, and a worker with two threads
    today = local_today(Settings.from_env().timezone)
    ids = _subscriptions(today)
    start_worker("actors", processes=1, threads=2)

    # When the daily job arrives twice at the same time (two real messages)
    sub_actors.process_due_subscriptions.send()
    sub_actors.process_due_subscriptions.send()

    # Then both runs fanned out, and every renewal message finished
    fanned = DUE + len(ids["sold_out"])
    wait_until(
        lambda: _finished("subscriptions.process_single")["succeeded"] == 2 * fanned,
        90,
        what="both runs' renewals finished",
    )
    with session_scope() as s:
        runs = [
            r.stats
            for r in s.scalars(select(OpsRun).where(OpsRun.task == "subscriptions.process_due"))
        ]
        deliveries = Counter(s.scalars(select(SubscriptionDelivery.subscription_id)))
        outcomes = Counter(s.scalars(select(SubscriptionDelivery.outcome)))
        orders = s.scalars(
            select(Order).where(Order.id.in_(select(SubscriptionDelivery.order_id)))
        ).all()
        subs = {x.id: x for x in s.scalars(select(Subscription))}
    assert [r["due"] for r in runs] == [fanned, fanned]
    # exactly one delivery (and one order) per due subscription; none for paused or tomorrow's
    assert deliveries == Counter({i: 1 for i in ids["due"] + ids["sold_out"]})
    assert outcomes == Counter({"ordered": DUE, "out_of_stock": 1})
    assert len(orders) == DUE
    # each date advanced by exactly one period
    for i in ids["due"] + ids["sold_out"]:
        assert subs[i].next_delivery_date == next_delivery(today, subs[i].frequency, today.day), i
    for i in ids["paused"]:
        assert subs[i].next_delivery_date == today
    # And the orders went through the order pipeline
    order_ids = [o.id for o in orders]
    wait_until(
        lambda: _order_statuses(order_ids) == Counter({"completed": DUE}),
        120,
        what="every subscription order completed",
    )


def _order_statuses(order_ids: list[int]) -> Counter[str]:
    with session_scope() as s:
        return Counter(s.scalars(select(Order.status).where(Order.id.in_(order_ids))))


def test_renewal_reminders_go_out_once_for_tomorrows_renewals(start_worker):
    # Given subscriptions renewing tomorrow and others later
    today = local_today(Settings.from_env().timezone)
    ids = _subscriptions(today)
    start_worker("actors", processes=1, threads=2)

    # When the reminder job runs twice
    sub_actors.send_subscription_renewal_reminders.send()
    sub_actors.send_subscription_renewal_reminders.send()
    wait_until(
        lambda: _finished("subscriptions.send_renewal_reminders")["succeeded"] == 2,
        60,
        what="both reminder runs finished",
    )

    # Then one reminder per renewal tomorrow, keyed by subscription and date, for its owner
    tomorrow = (today + dt.timedelta(days=1)).isoformat()
    with session_scope() as s:
        keys = sorted(
            s.scalars(
                select(Notification.entity_key).where(
                    Notification.template == "subscription_renewal_reminder"
                )
            )
        )
        owners = set(s.scalars(select(Notification.user_id)))
        expected_owner = s.scalar(
            select(func.min(Subscription.user_id)).where(Subscription.id.in_(ids["tomorrow"]))
        )
        runs = [
            r.stats
            for r in s.scalars(
                select(OpsRun).where(OpsRun.task == "subscriptions.renewal_reminders")
            )
        ]
    assert keys == sorted(f"subscription:{i}#{tomorrow}" for i in ids["tomorrow"])
    assert owners == {expected_owner}
    assert sorted(r["requested"] for r in runs) == [0, 4]
