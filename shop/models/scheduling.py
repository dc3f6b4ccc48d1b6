"""The scheduler's tables: one row per fire (the dedupe key), per-schedule state, the leader."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from jobcore.models.base import Base

FIRE_REASONS = ("on_time", "catch_up", "manual")


class ScheduleFire(Base):
    """One row per logical fire: UNIQUE(schedule, fire_time) makes a second send impossible."""

    __tablename__ = "schedule_fires"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    schedule: Mapped[str] = mapped_column(String(120), nullable=False)
    fire_time: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    message_id: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    reason: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )

    __table_args__ = (
        UniqueConstraint("schedule", "fire_time", name="uq_schedule_fires_schedule_fire_time"),
        CheckConstraint(
            "reason IN (" + ", ".join(f"'{r}'" for r in FIRE_REASONS) + ")", name="reason_known"
        ),
    )


class ScheduleState(Base):
    """What the scheduler has handled per schedule, and the operator's run-time overrides.

    ``checked_until``: every fire up to this time was sent or counted as missed, so a restart
    after downtime resumes from here. ``override_trigger`` is ``{"cron": EXPR}`` or
    ``{"every_s": N}``; ``override_args`` a JSON list of the actor's positional arguments.
    """

    __tablename__ = "schedule_state"

    name: Mapped[str] = mapped_column(String(120), primary_key=True)
    paused: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    checked_until: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_fire_time: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_message_id: Mapped[str | None] = mapped_column(String(64))
    misfires: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    override_trigger: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    override_args: Mapped[list[Any] | None] = mapped_column(JSONB)
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False
    )


class SchedulerLeader(Base):
    """Who holds the scheduler's advisory lock (one row), so the CLI can show it."""

    __tablename__ = "scheduler_leader"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    host: Mapped[str] = mapped_column(String(255), nullable=False)
    pid: Mapped[int] = mapped_column(Integer, nullable=False)
    backend_pid: Mapped[int] = mapped_column(Integer, nullable=False)
    since: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    heartbeat_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)
