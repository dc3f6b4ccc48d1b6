"""The workflow primitives' tables: unique-job keys, concurrency slots, rate buckets, groups."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import DateTime, Float, Integer, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from jobcore.models.base import Base

KEY_LENGTH = 200


class UniqueKey(Base):
    """Who holds a unique key: the message sent under it, until it is final or ``expires_at``.

    The primary key is the whole rule: a second send with the key conflicts, and the upsert
    takes the row over only when its holder is final or its window has passed
    (``jobcore.unique``). Never read-then-write.
    """

    __tablename__ = "job_unique_keys"

    key: Mapped[str] = mapped_column(String(KEY_LENGTH), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(64), nullable=False)
    claimed_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class LimitSlot(Base):
    """One slot of a global concurrency limit: free, or leased to a holder until ``expires_at``.

    A holder that dies never releases its slot; the lease running out frees it.
    """

    __tablename__ = "job_limit_slots"

    key: Mapped[str] = mapped_column(String(KEY_LENGTH), primary_key=True)
    slot: Mapped[int] = mapped_column(Integer, primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(120))
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class RateBucket(Base):
    """A token bucket per rate-limit key: ``tokens`` as of ``updated_at`` (database clock)."""

    __tablename__ = "job_rate_buckets"

    key: Mapped[str] = mapped_column(String(KEY_LENGTH), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float, nullable=False)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class JobGroup(Base):
    """A group's barrier: how many children have reached a final state, and its callbacks.

    Counted in the ledger writer's transaction that commits a child's final state (one
    ``job_group_members`` row per child, so a child delivered twice counts once); the commit
    that makes the count reach ``total`` writes the callbacks' sends, exactly once.
    """

    __tablename__ = "job_groups"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    total: Mapped[int] = mapped_column(Integer, nullable=False)
    succeeded: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    failed: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    # {"on_success": <a Send as JSON>, ...}: the callbacks' messages, written when it settles
    callbacks: Mapped[Any] = mapped_column(JSONB, nullable=False, server_default="{}")
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    settled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    fired: Mapped[Any | None] = mapped_column(JSONB)  # {"on_settled": <message id>, ...}


class JobGroupMember(Base):
    """A child of a group that has reached a final state (its first final outcome counts)."""

    __tablename__ = "job_group_members"

    message_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    group_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    outcome: Mapped[str] = mapped_column(String(16), nullable=False)
