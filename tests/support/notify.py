"""Fixtures and readers for the notification tests: the SMTP and SMS stand-ins, delivered mail.

Import the fixtures into a test module (``from tests.support.notify import mail, sms, ...``).
"""

from __future__ import annotations

import email
import os
from collections import Counter
from collections.abc import Iterator
from email.message import Message
from email.policy import default as default_policy

import pytest
from sqlalchemy import func, select

from devtools.stand_ins.sms import SmsStandIn, start_sms_stand_in
from devtools.stand_ins.smtp import SmtpStandIn, start_smtp_stand_in
from jobcore.db import session_scope
from jobcore.models import LedgerEntry
from shop.models import Notification


@pytest.fixture(scope="session")
def notify_parties(infrastructure: None) -> Iterator[tuple[SmtpStandIn, SmsStandIn]]:
    """The SMTP and SMS stand-ins, one process each per run; workers inherit their addresses."""
    smtp, gateway = start_smtp_stand_in(), start_sms_stand_in()
    host, port = smtp.smtp_address()
    os.environ.update(
        {
            "SHOPJOBS_SMTP_HOST": host,
            "SHOPJOBS_SMTP_PORT": str(port),
            "SHOPJOBS_SMS_URL": gateway.url,
        }
    )
    from shop.integrations import providers
    from shop.settings import Settings

    providers.configure(Settings.from_env())
    try:
        yield smtp, gateway
    finally:
        smtp.stop()
        gateway.stop()


@pytest.fixture()
def mail(notify_parties: tuple[SmtpStandIn, SmsStandIn], clean: None) -> SmtpStandIn:
    """The SMTP stand-in, emptied and without faults for this test."""
    notify_parties[0].reset()
    return notify_parties[0]


@pytest.fixture()
def sms(notify_parties: tuple[SmtpStandIn, SmsStandIn], clean: None) -> SmsStandIn:
    notify_parties[1].reset()
    return notify_parties[1]


def parsed(row: dict) -> Message:
    return email.message_from_string(row["raw"], policy=default_policy)


def body(row: dict, subtype: str = "plain") -> str:
    part = parsed(row).get_body(preferencelist=(subtype,))
    assert part is not None, f"no text/{subtype} part"
    return part.get_content()


def to_address(row: dict) -> str:
    (address,) = row["rcpt_tos"]
    return address


def statuses() -> Counter[str]:
    with session_scope() as s:
        return Counter(s.scalars(select(Notification.status)))


def notification(template: str, entity_key: str, channel: str = "email") -> Notification | None:
    with session_scope() as s:
        return s.scalar(
            select(Notification).where(
                Notification.template == template,
                Notification.entity_key == entity_key,
                Notification.channel == channel,
            )
        )


def settled(template: str, entity_key: str, channel: str = "email") -> Notification | None:
    row = notification(template, entity_key, channel)
    return row if row is not None and row.status in ("sent", "failed", "skipped") else None


def ledger_count(actor: str, state: str | None = None) -> int:
    with session_scope() as s:
        query = select(func.count()).select_from(LedgerEntry).where(LedgerEntry.actor == actor)
        if state is not None:
            query = query.where(LedgerEntry.state == state)
        return int(s.scalar(query) or 0)
