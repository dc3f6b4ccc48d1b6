"""The workflow primitives' tables: unique-job keys, concurrency slots, rate buckets."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, Float, Integer, String, func
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
