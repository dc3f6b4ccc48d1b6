"""Operations records: each maintenance run's statistics, backups, and health check results."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    Index,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from jobcore.models.base import Base

BACKUP_KINDS = ("daily", "weekly", "snapshot")
BACKUP_STATES = ("running", "created", "verified", "corrupt", "failed", "deleted")


class OpsRun(Base):
    """One run of a periodic operations job (subscriptions, reminders, a cleanup) and its figures."""

    __tablename__ = "ops_runs"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    task: Mapped[str] = mapped_column(String(64), nullable=False)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    finished_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    stats: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")

    __table_args__ = (Index("ix_ops_runs_task_started_at", "task", "started_at"),)


class Backup(Base):
    """A pg_dump of the critical tables, its checksum, where it was written and how it verified."""

    __tablename__ = "backups"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    # what makes a backup unique: the day, the ISO week, or the caller's key of a snapshot
    period_key: Mapped[str] = mapped_column(String(120), nullable=False)
    label: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="running")
    storage_key: Mapped[str | None] = mapped_column(String(300))
    targets: Mapped[list[str]] = mapped_column(JSONB, nullable=False, server_default="[]")
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    table_counts: Mapped[dict[str, int]] = mapped_column(JSONB, nullable=False, server_default="{}")
    dump_seconds: Mapped[float | None] = mapped_column(Float)
    restore_seconds: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    verified_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    deleted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint(
            "kind IN (" + ", ".join(f"'{k}'" for k in BACKUP_KINDS) + ")", name="kind_known"
        ),
        CheckConstraint(
            "status IN (" + ", ".join(f"'{s}'" for s in BACKUP_STATES) + ")", name="status_known"
        ),
        Index("uq_backups_kind_period", "kind", "period_key", unique=True),
    )


class HealthCheck(Base):
    """One component's state at one check: up or down, how long the probe took, and why."""

    __tablename__ = "health_checks"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    component: Mapped[str] = mapped_column(String(32), nullable=False)
    up: Mapped[bool] = mapped_column(Boolean, nullable=False)
    latency_ms: Mapped[float] = mapped_column(Float, nullable=False)
    detail: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    checked_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (Index("ix_health_checks_component_checked_at", "component", "checked_at"),)
