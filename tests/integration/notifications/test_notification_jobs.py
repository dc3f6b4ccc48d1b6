"""Each notification job delivers the right content to the right address, over real SMTP and SMS."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update

from actors import email as email_actors
from actors import notifications as notification_actors
from jobcore.db import session_scope
from shop import job_records as job_service
from shop.models import Job, Notification, Subscription
from shop.notifications.links import verify_token
from shop.notifications.messages import message_id
from shop.notifications.notifications import request_notification
from shop.notifications.sweep import create_schedule
from shop.orders import orders
from shop.settings import current as current_settings
from tests.support.factories import make_order, make_product, make_user
from tests.support.notify import body, notification, settled, to_address
from tests.support.waiting import wait_until

WORKER = {"processes": 1, "threads": 8}


def _by_subject(mail, count: int) -> dict[str, dict]:
    rows = wait_until(
        lambda: (m := mail.messages()) and len(m) >= count and m,
        60,
        0.1,
        what=f"{count} e-mails in the SMTP stand-in",
    )
    return {row["subject"]: row for row in rows}


def test_each_named_email_job_delivers_its_content_to_the_customers_address(mail, start_worker):
    # Given a customer with an order that has shipped, and a subscription
    with session_scope() as s:
        user = make_user(s, email="ada@example.test", full_name="Ada Lovelace")
        product = make_product(s, name="Linen shirt", price_cents=2500)
        order = make_order(
            s, user=user, lines=[(product, 2)], tracking_number="TRK42", status="shipped"
        )
        sub = Subscription(
            user_id=user.id,
            product_id=product.id,
            frequency="monthly",
            next_delivery_date=dt.date(2026, 12, 1),
        )
        s.add(sub)
        s.flush()
        ids = {"user": user.id, "order": order.id, "sub": sub.id}
    start_worker("actors", **WORKER)

    # When every named e-mail job is sent
    email_actors.send_order_confirmation_email.send(ids["order"])
    email_actors.send_shipping_notification_email.send(ids["order"])
    email_actors.send_welcome_email.send(ids["user"])
    email_actors.send_payment_failed.send(ids["order"])
    email_actors.send_subscription_renewal_reminder.send(ids["sub"])

    # Then five e-mails arrive, each to Ada, each with what it is about
    got = _by_subject(mail, 5)
    assert len(mail.messages(raw=False)) == 5
    assert all(to_address(row) == "ada@example.test" for row in got.values())
    confirmation = got[f"Order #{ids['order']} confirmed"]
    assert "2 x Linen shirt (25.00 EUR)" in body(confirmation)
    assert "Hello Ada," in body(confirmation)
    assert confirmation["message_id"] == message_id(
        "order_confirmation", f"order:{ids['order']}", current_settings().mail_from
    )
    shipped = body(got[f"Order #{ids['order']} is on its way"], "html")
    assert 'href="https://shop.example.test/track/TRK42"' in shipped
    assert "Pay with another card" in body(got[f"Payment for order #{ids['order']} failed"], "html")
    renewal = got["Your Linen shirt subscription renews on 2026-12-01"]
    assert "monthly subscription to 1 x Linen shirt" in body(renewal)
    # and the welcome link is signed for this user, and verifies
    welcome = body(got["Welcome to Shop"])
    token = welcome.split("token=", 1)[1].split()[0]
    assert verify_token(current_settings().verification_secret, token) == ids["user"]
    with session_scope() as s:
        assert (
            s.scalar(
                select(Notification.entity_key).where(
                    Notification.template == "subscription_renewal_reminder"
                )
            )
            == f"subscription:{ids['sub']}#2026-12-01"
        )


def test_templated_email_to_admins_and_a_persian_customer_and_send_email_async_from_a_job(
    mail, start_worker
):
    # Given an administrator and a customer who reads Persian
    with session_scope() as s:
        make_user(s, email="admin@example.test", full_name="Root Admin", is_admin=True)
        reader = make_user(s, email="dara@example.test", full_name="Dara", locale="fa")
        order = make_order(s, user=reader)
        job = job_service.create_job(
            s,
            "send_email",
            {
                "template": "order_confirmation",
                "entity_key": f"order:{order.id}",
                "user_id": reader.id,
            },
        )
        ids = {"order": order.id, "job": job.id}
    start_worker("actors", **WORKER)

    # When a templated e-mail goes to the administrators and the Job record asks for a confirmation
    email_actors.send_templated_email.send(None, "order_cancelled", f"order:{ids['order']}")
    email_actors.send_email_async.send(ids["job"])

    # Then the admin gets it in English, Dara gets a right-to-left Persian e-mail, the job succeeded
    got = _by_subject(mail, 2)
    assert to_address(got[f"Order #{ids['order']} was cancelled"]) == "admin@example.test"
    persian = got[f"سفارش #{ids['order']} تأیید شد"]
    assert to_address(persian) == "dara@example.test"
    assert 'dir="rtl"' in body(persian, "html")
    job_row = wait_until(lambda: (j := _job(ids["job"])) and j.status == "succeeded" and j, 30)
    assert job_row.result["status"] == "sent"


def _job(job_id: str) -> Job | None:
    with session_scope() as s:
        return s.get(Job, job_id)


def test_order_confirmation_and_shipping_go_by_email_and_sms_as_the_customer_prefers(
    mail, sms, start_worker
):
    # Given one customer who wants SMS too, and one who wants e-mail only
    with session_scope() as s:
        texter = make_user(s, email="t@example.test", phone="+4915100000001", notify_sms=True)
        quiet = make_user(s, email="q@example.test", phone="+4915100000002")
        a = make_order(s, user=texter, tracking_number="TRK7")
        b = make_order(s, user=quiet)
        ids = (a.id, b.id)
    start_worker("actors", **WORKER)

    # When the orders notify as the pipeline does
    orders.notify(ids[0], "order_confirmation")
    orders.notify(ids[0], "order_shipped")
    orders.notify(ids[1], "order_confirmation")

    # Then three e-mails, and two SMS to the customer who asked for them
    _by_subject(mail, 3)
    texts = wait_until(lambda: (m := sms.messages()) and len(m) >= 2 and m, 30)
    assert sorted(m["to"] for m in texts) == ["+4915100000001", "+4915100000001"]
    assert any(
        f"order #{ids[0]} shipped" in m["body"] and "/track/TRK7" in m["body"] for m in texts
    )
    assert notification("order_confirmation", f"order:{ids[1]}", "sms") is None


def test_scheduled_recurring_reminder_and_birthday_notifications_go_out_once(mail, start_worker):
    # Given a notification due in an hour, a recurring schedule, an unpaid old order and a birthday
    now = dt.datetime.now(dt.UTC)
    with session_scope() as s:
        user = make_user(s, email="sched@example.test", birthday=dt.date(1990, *_today_md()))
        old = make_order(s, user=user, placed_at=now - dt.timedelta(days=3))
        later = request_notification(
            s,
            template="order_confirmation",
            entity_key=f"order:{old.id}",
            user_id=user.id,
            send_at=now + dt.timedelta(hours=1),
        )
        ids = {"user": user.id, "order": old.id, "later": later}
    create_schedule(
        name="digest",
        template="scheduled_message",
        message="Your weekly digest",
        every_s=7 * 86400,
        user_id=ids["user"],
        first_run_at=now - dt.timedelta(minutes=1),
    )
    start_worker("actors", **WORKER)

    # When the every-minute sweep and the daily jobs run (twice each: a repeated tick)
    for _ in range(2):
        notification_actors.process_due.send()
        notification_actors.payment_reminders.send()
        notification_actors.birthday_greetings.send()
    got = _by_subject(mail, 3)

    # Then the recurring message, one payment reminder and one birthday greeting; not the later one
    assert set(got) == {
        "digest",
        f"Reminder: order #{ids['order']} is waiting for payment",
        "Happy birthday from Shop!",
    }
    assert notification("order_confirmation", f"order:{ids['order']}").status == "pending"

    # When the scheduled time has come (moved to the past) and the sweep runs
    with session_scope() as s:
        s.execute(
            update(Notification)
            .where(Notification.id == ids["later"])
            .values(send_at=now - dt.timedelta(seconds=1))
        )
    notification_actors.process_due.send()

    # Then it goes out, once; and nothing else was sent twice
    wait_until(lambda: settled("order_confirmation", f"order:{ids['order']}"), 30)
    assert len(mail.messages(raw=False)) == 4
    assert len({m["message_id"] for m in mail.messages(raw=False)}) == 4


def _today_md() -> tuple[int, int]:
    from zoneinfo import ZoneInfo

    today = dt.datetime.now(ZoneInfo(current_settings().timezone)).date()
    return (today.month, today.day) if (today.month, today.day) != (2, 29) else (2, 28)


def test_cleanup_deletes_only_old_settled_notifications(mail, start_worker):
    # Given an old sent notification and a fresh pending one
    with session_scope() as s:
        user = make_user(s)
        s.add_all(
            [
                Notification(
                    user_id=user.id,
                    template="welcome",
                    entity_key=f"user:{user.id}",
                    status="sent",
                    settled_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=200),
                ),
                Notification(
                    user_id=user.id,
                    template="birthday_greeting",
                    entity_key=f"user:{user.id}#2026",
                    status="pending",
                    send_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=1),
                ),
            ]
        )
    start_worker("actors", **WORKER)

    # When the cleanup runs with the 90-day retention
    message = notification_actors.cleanup_notifications.send(90)

    # Then only the old settled row is gone
    from tests.support.ledger import state

    wait_until(lambda: state(message.message_id) == "succeeded", 30)
    with session_scope() as s:
        assert list(s.scalars(select(Notification.template))) == ["birthday_greeting"]
