"""A 2,000-user campaign, and an SMTP outage during a run of orders: nothing lost, nothing doubled."""

from __future__ import annotations

import time
from collections import Counter

from sqlalchemy import func, insert, select

from actors import email as email_actors
from actors import notifications as notification_actors
from actors.orders import process_order_async
from jobcore import groups
from jobcore.db import session_scope
from shop.models import (
    CampaignChunk,
    Notification,
    NotificationCampaign,
    Order,
    User,
)
from shop.notifications import campaigns
from tests.support.factories import make_order, make_product, make_user
from tests.support.notify import ledger_count
from tests.support.waiting import wait_until

USERS = 2000


def _campaign(campaign_id: int) -> NotificationCampaign:
    with session_scope() as s:
        return s.get(NotificationCampaign, campaign_id)


def test_a_campaign_to_2000_users_delivers_one_mail_each_and_completes_once(mail, start_worker):
    # Given 2,000 customers who accept e-mail, and one administrator
    with session_scope() as s:
        s.execute(
            insert(User),
            [{"email": f"bulk{i}@example.test", "full_name": f"Bulk {i}"} for i in range(USERS)],
        )
        make_user(s, email="boss@example.test", is_admin=True)
    start_worker("actors", processes=2, threads=8)

    # When a campaign is started (chunks of 200)
    with session_scope() as s:
        campaign_id = campaigns.create_campaign(
            s,
            name="winter-sale",
            headline="Winter sale",
            body="Everything warm is 20% off.",
            chunk_size=200,
        )

    # Then every message settles, and the campaign completes
    done = wait_until(
        lambda: (c := _campaign(campaign_id)).status == "completed" and c,
        240,
        0.5,
        what="the campaign to complete",
    )
    assert (done.total, done.sent, done.failed, done.chunks_done, done.chunks_total) == (
        USERS,
        USERS,
        0,
        10,
        10,
    )
    report = wait_until(
        lambda: [m for m in mail.messages(raw=False) if m["rcpt_tos"] == ["boss@example.test"]], 60
    )
    received = [m for m in mail.messages(raw=False) if m["subject"] == "Winter sale"]
    per_address = Counter(a for m in received for a in m["rcpt_tos"])
    assert len(received) == USERS and len(per_address) == USERS and set(per_address.values()) == {1}
    assert len({m["message_id"] for m in received}) == USERS

    # When a chunk is redelivered and a final delivery message arrives again
    with session_scope() as s:
        last = s.scalar(
            select(func.max(Notification.id)).where(Notification.campaign_id == campaign_id)
        )
    chunk_again = notification_actors.campaign_chunk.send(campaign_id, 9)
    final_again = email_actors.send_email.send(last)
    from tests.support.ledger import state

    wait_until(
        lambda: (
            state(chunk_again.message_id) == "succeeded"
            and state(final_again.message_id) == "succeeded"
        ),
        30,
    )

    # Then nothing more is sent and the completion callback fired exactly once
    assert len(mail.messages(raw=False)) == USERS + 1
    assert [m["subject"] for m in report] == ["Campaign winter-sale finished: 2000 sent, 0 failed"]
    wait_until(lambda: ledger_count("notifications.campaign_completed", "succeeded") == 1, 30)
    assert ledger_count("notifications.campaign_completed") == 1
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(CampaignChunk)) == 10
        settled = groups.progress(s, campaigns.group_id(campaign_id))
    # and the campaign's group counted each delivery once
    assert settled is not None
    assert (settled["succeeded"], settled["failed"], settled["pending"]) == (USERS, 0, 0)
    assert settled["fired"].startswith("on_settled ")


def test_an_smtp_outage_during_150_orders_loses_no_mail_and_doubles_none(
    stand_ins, mail, start_worker
):
    # Given 150 orders, and an SMTP server that refuses connections
    with session_scope() as s:
        product = make_product(s, stock=1000, price_cents=1500)
        users = [make_user(s) for _ in range(30)]
        ids = [make_order(s, user=users[i % 30], lines=[(product, 1)]).id for i in range(150)]
    mail.set_faults(mode="refuse")
    start_worker("actors", processes=2, threads=8, env={"SHOPJOBS_NOTIFY_MAX_RETRIES": "100"})
    started = time.monotonic()

    # When every order goes through the pipeline during the outage
    for order_id in ids:
        process_order_async.send(order_id)

    # Then orders complete regardless (they only write notification rows)
    def completed() -> bool:
        with session_scope() as s:
            return s.scalar(
                select(func.count())
                .select_from(Order)
                .where(Order.id.in_(ids), Order.status == "completed")
            ) == len(ids)

    wait_until(completed, 180, 0.25, what="every order completed during the outage")
    # and e-mail deliveries are being retried, not lost, while the outage lasts 20 s
    wait_until(
        lambda: _retrying() >= 100 and time.monotonic() - started >= 20,
        120,
        0.25,
        what="retries observed during a 20 s outage",
    )
    assert mail.messages(raw=False) == []

    # When the server comes back
    mail.clear_faults()

    # Then every confirmation is delivered exactly once (one Message-ID each)
    def all_sent() -> bool:
        with session_scope() as s:
            return s.scalar(
                select(func.count())
                .select_from(Notification)
                .where(Notification.template == "order_confirmation", Notification.status == "sent")
            ) == len(ids)

    wait_until(all_sent, 180, 0.5, what="every confirmation sent after the outage")
    received = mail.messages(raw=False)
    assert len(received) == len(ids)
    assert len({m["message_id"] for m in received}) == len(ids)
    with session_scope() as s:
        attempts = list(
            s.scalars(
                select(Notification.attempts).where(Notification.template == "order_confirmation")
            )
        )
    assert min(attempts) >= 2  # every one of them met the outage at least once


def _retrying() -> int:
    with session_scope() as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(Notification)
                .where(Notification.status == "retrying", Notification.attempts >= 2)
            )
            or 0
        )
