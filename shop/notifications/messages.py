"""Building the e-mail of a notification: headers, text and HTML parts, and its stable Message-ID.

The Message-ID is derived from (template, entity, channel) alone, so every attempt to send
the same notification — including a resend after a crash between the server's 250 and our
commit — carries the same Message-ID, and a receiver (or a test) can recognise the duplicate.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from email.message import EmailMessage
from email.utils import format_datetime

from shop.notifications.render import RenderedEmail


def message_id(template: str, entity_key: str, mail_from: str, channel: str = "email") -> str:
    digest = hashlib.sha256(f"{template}|{entity_key}|{channel}".encode()).hexdigest()[:40]
    domain = mail_from.rpartition("@")[2] or "shopjobs.invalid"
    return f"<{digest}@{domain}>"


def dedupe_key(template: str, entity_key: str) -> str:
    """The e-mail log's unique key: one e-mail per (template, entity)."""
    return f"{template}|{entity_key}"[:160]


def build_email(
    *,
    rendered: RenderedEmail,
    mail_from: str,
    recipients: list[str],
    message_id_header: str,
    created_at: dt.datetime,
    template: str,
    notification_id: int,
) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = rendered.subject
    message["From"] = mail_from
    message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(created_at.astimezone(dt.UTC))
    message["Message-ID"] = message_id_header
    message["X-Shop-Template"] = template
    message["X-Shop-Notification"] = str(notification_id)
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message
