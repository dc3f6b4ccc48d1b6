"""Notifications to customers, their delivery state, campaigns, recurring schedules and the e-mail log."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from jobcore.models.base import Base

NOTIFICATION_STATES = ("pending", "sending", "retrying", "sent", "failed", "skipped")
SETTLED_STATES = ("sent", "failed", "skipped")


class Notification(Base):
    """One notification per (template, entity, channel), so a redelivered job cannot notify twice.

    ``status``: pending → sending (claimed until ``claimed_until``) → sent | retrying | failed,
    or skipped (the user opted out, has no address). ``provider_message_id`` is the e-mail's
    stable Message-ID, or the SMS gateway's message id.
    """

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[str] = mapped_column(String(16), nullable=False, server_default="email")
    template: Mapped[str] = mapped_column(String(64), nullable=False)
    entity_key: Mapped[str] = mapped_column(String(64), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="pending")
    send_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    provider_message_id: Mapped[str | None] = mapped_column(String(255))
    campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("notification_campaigns.id", ondelete="SET NULL"), index=True
    )
    enqueued_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    claimed_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    settled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint(
            "template", "entity_key", "channel", name="uq_notifications_template_entity"
        ),
        CheckConstraint(
            "status IN (" + ", ".join(f"'{s}'" for s in NOTIFICATION_STATES) + ")",
            name="status_known",
        ),
        Index(
            "ix_notifications_due",
            "status",
            "send_at",
            postgresql_where=text("status IN ('pending', 'sending', 'retrying')"),
        ),
    )


class EmailLog(Base):
    """Every e-mail handed to SMTP, with the stable Message-ID that makes resends recognisable."""

    __tablename__ = "email_log"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(160), unique=True, nullable=False)
    message_id_header: Mapped[str] = mapped_column(String(255), nullable=False)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    template: Mapped[str] = mapped_column(String(64), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="sending")
    error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )
    notification_id: Mapped[int | None] = mapped_column(
        ForeignKey("notifications.id", ondelete="SET NULL")
    )
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")


class NotificationCampaign(Base):
    """A bulk notification to many users: frozen audience, progress counters, one completion."""

    __tablename__ = "notification_campaigns"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True, nullable=False)
    template: Mapped[str] = mapped_column(String(64), nullable=False)
    channel: Mapped[str] = mapped_column(String(16), nullable=False, server_default="email")
    headline: Mapped[str] = mapped_column(String(200), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    chunk_size: Mapped[int] = mapped_column(Integer, nullable=False, server_default="200")
    total: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    chunks_total: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    chunks_done: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    sent: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    failed: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="running")
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    completed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("status IN ('running', 'completed')", name="status_known"),
        CheckConstraint("chunk_size > 0", name="chunk_positive"),
    )


class CampaignChunk(Base):
    """One row per fanned-out chunk: a redelivered chunk finds its row and queues nothing again."""

    __tablename__ = "campaign_chunks"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("notification_campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    chunk: Mapped[int] = mapped_column(Integer, primary_key=True)
    queued: Mapped[int] = mapped_column(Integer, nullable=False)
    done_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class NotificationSchedule(Base):
    """A recurring notification: every ``every_s`` seconds, to one user or (no user) the admins."""

    __tablename__ = "notification_schedules"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True, nullable=False)
    template: Mapped[str] = mapped_column(String(64), nullable=False)
    channel: Mapped[str] = mapped_column(String(16), nullable=False, server_default="email")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    message: Mapped[str] = mapped_column(Text, nullable=False)
    every_s: Mapped[int] = mapped_column(Integer, nullable=False)
    next_run_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, index=True
    )
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
    runs: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )

    __table_args__ = (CheckConstraint("every_s >= 60", name="every_at_least_a_minute"),)
