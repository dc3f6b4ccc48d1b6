"""A campaign settles through its job group: retries, redeliveries and duplicates count once."""

from __future__ import annotations

from collections import Counter

import dramatiq
from sqlalchemy import func, insert, select, text

from actors import notifications as notification_actors  # noqa: F401  (declares the actors)
from jobcore import groups
from jobcore.db import session_scope
from jobcore.sends import LEDGER_RECORDED_OPTION
from shop.models import Notification, NotificationCampaign, User
from shop.notifications import campaigns, sweep
from tests.support.factories import make_user
from tests.support.notify import ledger_count
from tests.support.waiting import wait_until

USERS = 300


def _settled(campaign_id: int) -> dict | None:
    with session_scope() as s:
        return groups.progress(s, campaigns.group_id(campaign_id))


def _failed_deliveries() -> list[tuple[str, str]]:
    with session_scope() as s:
        return [
            tuple(r)
            for r in s.execute(
                text(
                    "SELECT message_id, left(coalesce(error, ''), 200) FROM job_ledger"
                    " WHERE actor = 'email.send_email' AND state <> 'succeeded'"
                )
            ).all()
        ]


def test_a_campaign_whose_deliveries_are_retried_redelivered_and_duplicated_completes_once(
    mail, start_worker
):
    # Given 300 customers, one administrator, and an SMTP server answering every 7th
    # message with 451 (retried with backoff)
    with session_scope() as s:
        s.execute(
            insert(User),
            [{"email": f"camp{i}@example.test", "full_name": f"Camp {i}"} for i in range(USERS)],
        )
        make_user(s, email="boss@example.test", is_admin=True)
    mail.set_faults(mode="smtp_451", rate=1 / 7, paths=["/DATA"])

    # When a campaign starts (chunks of 50) and, before any worker runs, a copy of every
    # delivery message is published straight into its queue (its child id, its group)
    with session_scope() as s:
        campaign_id = campaigns.create_campaign(
            s, name="group-sale", headline="Group sale", body="Counted once.", chunk_size=50
        )
    with session_scope() as s:
        rows = s.execute(
            select(Notification.id, Notification.channel).where(
                Notification.campaign_id == campaign_id
            )
        ).all()
    broker = dramatiq.get_broker()
    gid = campaigns.group_id(campaign_id)
    for row in rows:
        copy = groups.child(campaigns.delivery(row.id, row.channel), gid)
        broker.enqueue(copy.copy(options={LEDGER_RECORDED_OPTION: True}))
    # and workers run (a delivery attempt's lease 15 s), one of whose processes is SIGKILLed a
    # third of the way through
    worker = start_worker("actors", processes=2, threads=8, env={"SHOPJOBS_NOTIFY_CLAIM_S": "15"})
    wait_until(
        lambda: (
            (p := _settled(campaign_id)) is not None and p["succeeded"] + p["failed"] >= USERS // 3
        ),
        180,
        0.1,
        what="a third of the deliveries counted",
    )
    killed = worker.kill_worker_process()
    worker.wait_replaced(killed)
    # and the sweep runs as its schedule would (re-queueing rows whose lease ran out)
    sweep.enqueue_due()

    # Then the campaign completes, its group counted each of the 300 deliveries once
    done = wait_until(
        lambda: (c := _campaign(campaign_id)).status == "completed" and c,
        300,
        0.5,
        what="the campaign to complete",
    )
    settled = _settled(campaign_id)
    assert settled is not None, "the campaign has its group"
    assert (settled["total"], settled["pending"]) == (USERS, 0)
    assert (settled["succeeded"], settled["failed"]) == (USERS, 0), _failed_deliveries()
    assert (done.sent, done.failed) == (USERS, 0)
    # and the completion callback ran exactly once: one report to the administrator
    wait_until(lambda: ledger_count("notifications.campaign_completed", "succeeded") == 1, 60)
    assert ledger_count("notifications.campaign_completed") == 1
    report = wait_until(
        lambda: [m for m in mail.messages(raw=False) if m["rcpt_tos"] == ["boss@example.test"]],
        60,
    )
    assert [m["subject"] for m in report] == ["Campaign group-sale finished: 300 sent, 0 failed"]
    # and every notification row says sent; every customer got the mail (a worker killed after
    # SMTP's 250 and before the commit may send one twice, with the same Message-ID)
    with session_scope() as s:
        statuses = dict(
            s.execute(
                select(Notification.status, func.count())
                .where(Notification.campaign_id == campaign_id)
                .group_by(Notification.status)
            ).all()
        )
    assert statuses == {"sent": USERS}
    received = [m for m in mail.messages(raw=False) if m["subject"] == "Group sale"]
    per_address = Counter(a for m in received for a in m["rcpt_tos"])
    assert len(per_address) == USERS
    assert len({m["message_id"] for m in received}) == USERS
    # and the faults bit: deliveries were retried, and the copies were delivered too
    with session_scope() as s:
        retried, copies = s.execute(
            text(
                "SELECT count(*) FILTER (WHERE attempts > 1),"
                " sum(attempts + duplicates + redeliveries) FROM job_ledger"
                " WHERE group_id = :g"
            ),
            {"g": gid},
        ).one()
    assert retried > 0
    assert copies > USERS
    assert worker.deaths() == 1


def _campaign(campaign_id: int) -> NotificationCampaign:
    with session_scope() as s:
        return s.get(NotificationCampaign, campaign_id)
