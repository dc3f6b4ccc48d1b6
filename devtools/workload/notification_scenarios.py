"""The main job's notifications: real SMTP and SMS stand-ins, e-mail jobs, a campaign, faults.

The stand-ins listen where the workers' settings point (``SHOPJOBS_SMTP_HOST``/``PORT``,
``SHOPJOBS_SMS_URL``; by default 127.0.0.1:8025 and :8104), so the workers started before
this scenario reach them. Every 10th SMTP MAIL gets a 421 and every 10th SMS a 503 (retried,
delivered once); three recipients are refused with 550 (failed for good, expected); two
requests name a missing user or an unknown template (bad input, expected).
"""

from __future__ import annotations

import atexit
import random
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlparse

from sqlalchemy import func, select

from devtools.stand_ins.process import StandIn
from devtools.stand_ins.sms import start_sms_stand_in
from devtools.stand_ins.smtp import SmtpStandIn, start_smtp_stand_in
from devtools.workload.seed import Seeded
from devtools.workload.sent import Sent
from jobcore.db import session_scope
from shop.job_records import create_job
from shop.models import Notification, Order
from shop.notifications import campaigns
from shop.settings import Settings

if TYPE_CHECKING:
    from devtools.stand_ins.sms import SmsStandIn

_running: dict[str, StandIn] = {}
REFUSED_WITH_550 = 3


def _start_stand_ins() -> None:
    if _running:
        return
    settings = Settings.from_env()
    smtp = start_smtp_stand_in(smtp_port=settings.smtp_port, log_path=".run/smtp.log")
    _running["smtp"] = smtp
    _running["sms"] = start_sms_stand_in(
        port=urlparse(settings.sms_url).port or 0, log_path=".run/sms.log"
    )
    atexit.register(_stop_stand_ins)
    host, port = smtp.smtp_address()
    print(
        f"   SMTP stand-in on {host}:{port} (admin {smtp.url}), SMS gateway {_running['sms'].url}",
        flush=True,
    )


def _stop_stand_ins() -> None:
    for stand_in in _running.values():
        stand_in.stop()


def notifications(rng: random.Random, seeded: Seeded) -> Sent:
    """E-mail jobs of every kind, a campaign to every customer, SMS, and a few bad requests."""
    from actors import email as mail_jobs
    from actors import notifications as notify_jobs
    from jobcore import outbox

    _start_stand_ins()
    smtp, sms = _running["smtp"], _running["sms"]
    smtp.set_faults(mode="smtp_421", rate=0.1)
    sms.set_faults(mode="http_503", rate=0.1)
    sent = Sent(
        "notifications: e-mail jobs, SMS, a campaign (SMTP 421 every 10th, SMS 503 every 10th)"
    )
    ids = sent.message_ids
    for user_id in seeded.user_ids[:20]:
        ids.append(mail_jobs.send_welcome_email.send(user_id).message_id)
    for order_id in rng.sample(seeded.order_ids, 15):
        ids.append(mail_jobs.send_payment_failed.send(order_id).message_id)
        ids.append(
            notify_jobs.send_templated_sms.send(
                _user_of(order_id), "order_confirmation", f"order:{order_id}"
            ).message_id
        )
    ids.append(
        mail_jobs.send_templated_email.send(
            None, "order_delivered", f"order:{seeded.order_ids[0]}"
        ).message_id
    )
    with session_scope() as s:
        for order_id in rng.sample(seeded.order_ids, 5):
            job = create_job(
                s,
                "send_email",
                {
                    "template": "order_confirmation",
                    "entity_key": f"order:{order_id}",
                    "user_id": _user_of(order_id),
                },
            )
            ids.append(outbox.enqueue(s, mail_jobs.send_email_async, job.id))
        campaigns.create_campaign(
            s,
            name="main-job-newsletter",
            headline="New in the shop",
            body="Fresh arrivals this week.",
            chunk_size=20,
        )
    ids += [
        notify_jobs.payment_reminders.send().message_id,
        notify_jobs.birthday_greetings.send().message_id,
    ]
    # bad input: a user that does not exist, a template that does not exist
    ids.append(mail_jobs.send_welcome_email.send(999_999).message_id)
    ids.append(mail_jobs.send_templated_email.send(None, "no_such_template", "order:1").message_id)
    sent.expected_failures += 2
    return sent


def refusals(rng: random.Random, seeded: Seeded) -> Sent:
    """Three recipients refused with 550: permanent, recorded, never retried."""
    from actors import email as mail_jobs

    smtp = _running["smtp"]
    smtp.set_faults(mode="smtp_550", times=REFUSED_WITH_550)
    sent = Sent("notifications: 3 recipients refused with SMTP 550 (failed for good)")
    for user_id in seeded.user_ids[20 : 20 + REFUSED_WITH_550]:
        sent.message_ids.append(mail_jobs.send_welcome_email.send(user_id).message_id)
    sent.expected_failures_later += REFUSED_WITH_550
    return sent


def _user_of(order_id: int) -> int:
    with session_scope() as s:
        return int(s.execute(select(Order.user_id).where(Order.id == order_id)).scalar_one())


def summary_lines() -> list[str]:
    """E-mails and SMS delivered, from the database and from what the stand-ins received."""
    with session_scope() as s:
        rows = s.execute(
            select(Notification.channel, Notification.status, func.count())
            .group_by(Notification.channel, Notification.status)
            .order_by(Notification.channel, Notification.status)
        ).all()
        retried = s.scalar(
            select(func.count()).select_from(Notification).where(Notification.attempts > 1)
        )
    lines = [
        "notifications by channel and state: "
        + (", ".join(f"{c} {st} {n}" for c, st, n in rows) or "none")
    ]
    by: dict[str, Any] = {f"{c}:{st}": n for c, st, n in rows}
    smtp = _running.get("smtp")
    if isinstance(smtp, SmtpStandIn):
        received = smtp.messages(raw=False)
        distinct = len({m["message_id"] for m in received})
        lines.append(
            f"e-mails delivered: {by.get('email:sent', 0)} (the SMTP server received {len(received)}, "
            f"{distinct} distinct Message-IDs); failed {by.get('email:failed', 0)}; "
            f"retried notifications: {retried}"
        )
    sms = cast("SmsStandIn | None", _running.get("sms"))
    if sms is not None:
        lines.append(
            f"SMS delivered: {by.get('sms:sent', 0)} (the gateway received {len(sms.messages())}); "
            f"failed {by.get('sms:failed', 0)}, skipped {by.get('sms:skipped', 0)}"
        )
    return lines
