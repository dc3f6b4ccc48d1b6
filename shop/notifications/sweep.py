"""The periodic side of notifications: due and lost deliveries, recurring schedules, reminders,
birthdays and cleanup. Each is idempotent by a database key, so a repeated tick does nothing new.
"""

from __future__ import annotations

import datetime as dt
import logging
from zoneinfo import ZoneInfo

from sqlalchemy import and_, delete, extract, func, or_, select
from sqlalchemy.dialects.postgresql import insert

from jobcore.db import session_scope
from jobcore.errors import InvalidInput
from shop.models import EmailLog, Notification, NotificationSchedule, Order, User
from shop.models.notifications import SETTLED_STATES
from shop.notifications import campaigns
from shop.notifications.dispatch import CHANNELS, enqueue_delivery
from shop.notifications.notifications import request_notification
from shop.settings import current as current_settings

logger = logging.getLogger(__name__)
REQUEUE_PENDING_AFTER = dt.timedelta(minutes=10)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def enqueue_due(limit: int = 2000) -> int:
    """Queue what is due and never went out: scheduled rows whose time came, rows whose delivery
    message was lost, and attempts whose lease ran out (a worker died mid-send)."""
    now = _now()
    with session_scope() as s:
        rows = s.execute(
            select(Notification.id, Notification.channel, Notification.campaign_id)
            .where(
                or_(
                    and_(
                        Notification.status == "pending",
                        or_(Notification.send_at.is_(None), Notification.send_at <= now),
                        or_(
                            Notification.enqueued_at.is_(None),
                            Notification.enqueued_at < now - REQUEUE_PENDING_AFTER,
                        ),
                    ),
                    and_(
                        Notification.status.in_(("sending", "retrying")),
                        Notification.claimed_until < now,
                    ),
                )
            )
            .order_by(Notification.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        for row in rows:
            if row.campaign_id is not None:  # the same child of the campaign's group again
                campaigns.requeue(s, row.campaign_id, row.id, row.channel)
            else:
                enqueue_delivery(s, row.id, row.channel)
    if rows:
        logger.info("notification sweep queued %d deliveries", len(rows))
    return len(rows)


def create_schedule(
    *,
    name: str,
    template: str,
    message: str,
    every_s: int,
    user_id: int | None = None,
    channel: str = "email",
    first_run_at: dt.datetime | None = None,
) -> int:
    """A recurring notification (to ``user_id``, or the administrators when None)."""
    if every_s < 60:
        raise InvalidInput("a recurring notification repeats at most once a minute")
    if channel not in CHANNELS:
        raise InvalidInput(f"unknown channel {channel!r}")
    with session_scope() as s:
        schedule_id = s.execute(
            insert(NotificationSchedule)
            .values(
                name=name,
                template=template,
                channel=channel,
                user_id=user_id,
                message=message,
                every_s=every_s,
                next_run_at=first_run_at or _now(),
            )
            .on_conflict_do_nothing(index_elements=["name"])
            .returning(NotificationSchedule.id)
        ).scalar()
    if schedule_id is None:
        raise InvalidInput(f"a notification schedule named {name!r} exists already")
    return int(schedule_id)


def run_recurring() -> int:
    """One notification per due occurrence; the occurrence's time is in the key, and moving
    ``next_run_at`` is a conditional UPDATE, so two sweeps cannot both take an occurrence."""
    now = _now()
    created = 0
    with session_scope() as s:
        due = (
            s.execute(
                select(NotificationSchedule)
                .where(NotificationSchedule.active, NotificationSchedule.next_run_at <= now)
                .with_for_update(skip_locked=True)
            )
            .scalars()
            .all()
        )
        for sched in due:
            occurrence = sched.next_run_at
            skipped = int(
                (now - occurrence).total_seconds() // sched.every_s
            )  # missed ones coalesce
            sched.next_run_at = occurrence + dt.timedelta(seconds=sched.every_s * (skipped + 1))
            sched.runs += 1
            stamp = occurrence.astimezone(dt.UTC).strftime("%Y%m%dT%H%M")
            if (
                request_notification(
                    s,
                    template=sched.template,
                    entity_key=f"schedule:{sched.id}#{stamp}",
                    user_id=sched.user_id,
                    channel=sched.channel,
                )
                is not None
            ):
                created += 1
    return created


def payment_reminders(today: dt.date | None = None) -> int:
    """Once a day per unpaid order older than ``payment_overdue_after_h``: key ``order:<id>#<date>``."""
    settings = current_settings()
    day = today or dt.datetime.now(ZoneInfo(settings.timezone)).date()
    cutoff = _now() - dt.timedelta(hours=settings.payment_overdue_after_h)
    created = 0
    with session_scope() as s:
        overdue = s.execute(
            select(Order.id, Order.user_id).where(
                Order.status == "pending", Order.placed_at < cutoff
            )
        ).all()
        for order_id, user_id in overdue:
            if (
                request_notification(
                    s,
                    template="payment_reminder",
                    entity_key=f"order:{order_id}#{day.isoformat()}",
                    user_id=user_id,
                )
                is not None
            ):
                created += 1
    logger.info("payment reminders: %d overdue orders, %d reminders queued", len(overdue), created)
    return created


def birthday_greetings(today: dt.date | None = None) -> int:
    """Once per user per year (key ``user:<id>#<year>``); 29 February birthdays on 28 February
    in other years."""
    settings = current_settings()
    day = today or dt.datetime.now(ZoneInfo(settings.timezone)).date()
    conditions = [
        and_(extract("month", User.birthday) == day.month, extract("day", User.birthday) == day.day)
    ]
    leap = day.year % 4 == 0 and (day.year % 100 != 0 or day.year % 400 == 0)
    if day.month == 2 and day.day == 28 and not leap:
        conditions.append(
            and_(extract("month", User.birthday) == 2, extract("day", User.birthday) == 29)
        )
    created = 0
    with session_scope() as s:
        users = s.scalars(
            select(User.id).where(User.birthday.is_not(None), User.notify_email, or_(*conditions))
        ).all()
        for user_id in users:
            if (
                request_notification(
                    s,
                    template="birthday_greeting",
                    entity_key=f"user:{user_id}#{day.year}",
                    user_id=user_id,
                )
                is not None
            ):
                created += 1
    logger.info("birthday greetings: %d queued", created)
    return created


def cleanup(days: int, batch: int = 5000) -> int:
    """Delete settled notifications (and their e-mail log) older than ``days`` days, in batches."""
    cutoff = _now() - dt.timedelta(days=days)
    total = 0
    while True:
        with session_scope() as s:
            ids = s.scalars(
                select(Notification.id)
                .where(
                    Notification.status.in_(SETTLED_STATES),
                    func.coalesce(Notification.settled_at, Notification.created_at) < cutoff,
                )
                .order_by(Notification.id)
                .limit(batch)
            ).all()
            if not ids:
                break
            s.execute(delete(EmailLog).where(EmailLog.notification_id.in_(ids)))
            s.execute(delete(Notification).where(Notification.id.in_(ids)))
            total += len(ids)
    with session_scope() as s:
        s.execute(
            delete(EmailLog).where(EmailLog.notification_id.is_(None), EmailLog.created_at < cutoff)
        )
    logger.info("notification cleanup: %d rows older than %d days deleted", total, days)
    return total
