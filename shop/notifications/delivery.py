"""Delivering one notification row, exactly once per (template, entity, channel).

1. Claim: a conditional UPDATE moves the row to ``sending`` with a lease; a duplicate delivery
   message finds it claimed or settled and does nothing.
2. Load the recipient and the context, render (a missing template or entity is permanent).
3. Send: SMTP with the row's stable Message-ID, or the SMS gateway with a stable idempotency key.
4. Settle in one transaction: ``sent`` (with the e-mail log) or ``failed``; a transient failure
   marks the row ``retrying`` and re-raises, so ``Retries`` tries again with backoff.

Windows in which a message can be sent twice (same Message-ID each time), see the README:
the server stored the message but its 250 reply was lost, and the worker died between the 250
and the ``sent`` commit. Nothing else resends: the claim and the settle are conditional.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
from typing import Any

import dramatiq
from sqlalchemy import and_, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from jobcore.db import session_scope
from jobcore.errors import NotFound, PermanentError, TransientError
from shop.models import EmailLog, Notification, User
from shop.notifications import mailer, render
from shop.notifications import sms as sms_client
from shop.notifications.context_lookup import load_context
from shop.notifications.messages import build_email, dedupe_key, message_id
from shop.settings import current as current_settings

logger = logging.getLogger(__name__)
ACTIVE = ("pending", "sending", "retrying")


@dataclasses.dataclass(frozen=True)
class Recipient:
    addresses: list[str]
    locale: str
    name: str


@dataclasses.dataclass(frozen=True)
class Claimed:
    id: int
    template: str
    entity_key: str
    channel: str
    user_id: int | None
    attempts: int
    created_at: dt.datetime
    # loaded in the claim's transaction (one round of BEGIN/COMMIT less per message)
    to: Recipient | None = None
    context: dict[str, Any] = dataclasses.field(default_factory=dict)
    load_error: PermanentError | None = None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def claim(notification_id: int, lease_s: int) -> Claimed | str:
    """Take the row for one attempt, or return its status when it is not ours to send now."""
    now = _now()
    with session_scope() as s:
        row = s.execute(
            update(Notification)
            .where(
                Notification.id == notification_id,
                or_(Notification.send_at.is_(None), Notification.send_at <= now),
                or_(
                    Notification.status.in_(("pending", "retrying")),
                    and_(Notification.status == "sending", Notification.claimed_until < now),
                ),
            )
            .values(
                status="sending",
                attempts=Notification.attempts + 1,
                claimed_until=now + dt.timedelta(seconds=lease_s),
            )
            .returning(
                Notification.id,
                Notification.template,
                Notification.entity_key,
                Notification.channel,
                Notification.user_id,
                Notification.attempts,
                Notification.created_at,
            )
        ).first()
        if row is not None:
            claimed = Claimed(*row)
            if claimed.channel == "email":
                _log_attempt(s, claimed)
            try:
                to = recipient(s, claimed.user_id, claimed.channel)
                context = load_context(s, claimed.template, claimed.entity_key) if to else {}
            except PermanentError as exc:  # the claim still commits; the caller records the failure
                return dataclasses.replace(claimed, load_error=exc)
            return dataclasses.replace(claimed, to=to, context=context)
        found = s.execute(
            select(Notification.status, Notification.campaign_id, Notification.claimed_until).where(
                Notification.id == notification_id
            )
        ).first()
    if found is None:
        raise NotFound(f"notification {notification_id} does not exist")
    if found.campaign_id is not None:
        _settled_or_retry(notification_id, found.status, found.claimed_until, now)
    return str(found.status)


def _settled_or_retry(
    notification_id: int, status: str, claimed_until: dt.datetime | None, now: dt.datetime
) -> None:
    """A campaign delivery that finds its row taken: its message is a child of the campaign's
    group, and counts there with its final state. So it ends only once the row has settled,
    with the row's outcome: a failed row fails this copy too; a row another attempt is still
    sending makes this copy retry once that attempt's lease has run out (by then it settled
    the row, or it died and this copy takes the row over). A copy never counts a row as done
    before it is, and waiting out the lease costs one retry, not the delivery's whole budget."""
    if status in ACTIVE:
        left_ms = (claimed_until - now).total_seconds() * 1000 if claimed_until else 0
        raise DeliveryInFlight(
            f"notification {notification_id} is being delivered by another attempt; retrying"
            " once its lease has run out",
            delay=max(200, int(left_ms) + 500),
        )
    if status == "failed":
        raise PermanentError(f"notification {notification_id} failed already")


class DeliveryInFlight(dramatiq.Retry):
    """Another attempt holds the notification's row: retry after its lease (``delay``, ms)."""


def _log_attempt(session: Session, claimed: Claimed) -> None:
    """The e-mail log row (one per template and entity) counts hand-offs to SMTP."""
    header = message_id(claimed.template, claimed.entity_key, current_settings().mail_from)
    session.execute(
        insert(EmailLog)
        .values(
            dedupe_key=dedupe_key(claimed.template, claimed.entity_key),
            message_id_header=header,
            user_id=claimed.user_id,
            template=claimed.template,
            notification_id=claimed.id,
            status="sending",
            attempts=1,
        )
        .on_conflict_do_update(
            index_elements=["dedupe_key"],
            set_={"attempts": EmailLog.attempts + 1, "status": "sending"},
        )
    )


def recipient(session: Session, user_id: int | None, channel: str) -> Recipient | None:
    """Where to send: the user's address or phone, or every administrator's; None if nowhere."""
    if user_id is None:
        admins = session.execute(
            select(User.email, User.phone).where(User.is_admin).order_by(User.id)
        ).all()
        addresses = [a.email if channel == "email" else a.phone for a in admins]
        addresses = [a for a in addresses if a]
        return Recipient(addresses, render.DEFAULT_LOCALE, "team") if addresses else None
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist")
    address = user.email if channel == "email" else user.phone
    if not address:
        return None
    return Recipient([address], render.locale_for(user.locale), (user.full_name.split() or [""])[0])


def deliver(notification_id: int) -> str:
    """Deliver one notification; returns its status afterwards (``sent``, ``skipped``, ...)."""
    settings = current_settings()
    claimed = claim(notification_id, settings.notify_claim_s)
    if isinstance(claimed, str):
        logger.info("notification %r is %s; nothing to do", notification_id, claimed)
        return claimed
    try:
        if claimed.load_error is not None:
            raise claimed.load_error
        to, context = claimed.to, claimed.context
        if to is None:
            settle(claimed.id, "skipped", error=f"no {claimed.channel} address")
            logger.info(
                "notification %r skipped: the recipient has no %s address",
                claimed.id,
                claimed.channel,
            )
            return "skipped"
        context = {
            **context,
            "shop": {"name": "Shop", "url": settings.shop_base_url},
            "recipient": {"name": to.name},
        }
        if claimed.channel == "email":
            provider_id = _send_email(claimed, to, context)
        else:
            provider_id = _send_sms(claimed, to, context)
    except PermanentError as exc:
        settle(claimed.id, "failed", error=str(exc))
        logger.warning(
            "notification %r (%s) failed for good: %s", claimed.id, claimed.template, exc
        )
        raise
    except Exception as exc:
        _release(
            claimed.id,
            f"{type(exc).__name__}: {exc}"
            if isinstance(exc, TransientError)
            else type(exc).__name__,
        )
        logger.warning(
            "notification %r (%s) attempt %d failed: %s",
            claimed.id,
            claimed.template,
            claimed.attempts,
            exc if isinstance(exc, TransientError) else type(exc).__name__,
        )
        raise
    settle(claimed.id, "sent", provider_id=provider_id)
    logger.info(
        "notification %r (%s, %s) sent on attempt %d",
        claimed.id,
        claimed.template,
        claimed.channel,
        claimed.attempts,
    )
    return "sent"


def _send_email(claimed: Claimed, to: Recipient, context: dict[str, Any]) -> str:
    settings = current_settings()
    rendered = render.render_email(claimed.template, to.locale, context)
    header = message_id(claimed.template, claimed.entity_key, settings.mail_from)
    message = build_email(
        rendered=rendered,
        mail_from=settings.mail_from,
        recipients=to.addresses,
        message_id_header=header,
        created_at=claimed.created_at,
        template=claimed.template,
        notification_id=claimed.id,
    )
    mailer.send(settings, message, to.addresses)
    return header


def _send_sms(claimed: Claimed, to: Recipient, context: dict[str, Any]) -> str:
    settings = current_settings()
    body = render.render_sms(claimed.template, to.locale, context)
    key = (
        "ntf-"
        + hashlib.sha256(f"{claimed.template}|{claimed.entity_key}|sms".encode()).hexdigest()[:40]
    )
    ids = [
        sms_client.send(settings, number, body, f"{key}-{i}")
        for i, number in enumerate(to.addresses)
    ]
    return ",".join(ids)[:255]


def _release(notification_id: int, error: str) -> None:
    """Hand the row back for the retry; the sweep re-queues it if the retry never comes."""
    settings = current_settings()
    until = _now() + dt.timedelta(
        milliseconds=settings.max_backoff_ms, seconds=settings.notify_claim_s
    )
    with session_scope() as s:
        s.execute(
            update(Notification)
            .where(Notification.id == notification_id, Notification.status == "sending")
            .values(status="retrying", last_error=error[:1000], claimed_until=until)
        )


def settle(
    notification_id: int, status: str, *, error: str | None = None, provider_id: str | None = None
) -> bool:
    """Final state, once: False when the row had already settled (a duplicate did it)."""
    now = _now()
    with session_scope() as s:
        row = s.execute(
            update(Notification)
            .where(Notification.id == notification_id, Notification.status.in_(ACTIVE))
            .values(
                status=status,
                settled_at=now,
                claimed_until=None,
                sent_at=now if status == "sent" else None,
                last_error=error[:1000] if error else Notification.last_error,
                provider_message_id=provider_id or Notification.provider_message_id,
            )
            .returning(Notification.channel)
        ).first()
        if row is None:
            return False
        if row.channel == "email":
            s.execute(
                update(EmailLog)
                .where(EmailLog.notification_id == notification_id)
                .values(
                    status=status,
                    sent_at=now if status == "sent" else None,
                    error=error[:1000] if error else None,
                )
            )
    return True


def give_up(notification_id: int, error: str) -> bool:
    """Retries are exhausted: the row says failed (its message's final state counts in its
    campaign's group, if any)."""
    logger.warning("notification %r: retries exhausted", notification_id)
    return settle(notification_id, "failed", error=error)
