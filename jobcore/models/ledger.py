"""The message ledger (one row per Dramatiq message) and the outbox of messages still to publish."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from jobcore.ledger.states import FINAL, State
from jobcore.models.base import Base

LEDGER_STATES: tuple[State, ...] = tuple(State)
FINAL_STATES: tuple[State, ...] = tuple(s for s in State if s in FINAL)


class LedgerEntry(Base):
    """What happened to one message, keyed by Dramatiq's message_id."""

    __tablename__ = "job_ledger"

    message_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    actor: Mapped[str] = mapped_column(String(120), nullable=False)
    queue: Mapped[str] = mapped_column(String(120), nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    state_changed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    args: Mapped[Any | None] = mapped_column(JSONB)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    enqueued_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    eta: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)
    traceback: Mapped[str | None] = mapped_column(Text)
    order_id: Mapped[int | None] = mapped_column(BigInteger)
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    job_id: Mapped[str | None] = mapped_column(String(64))
    pipeline_id: Mapped[str | None] = mapped_column(String(64))
    group_id: Mapped[str | None] = mapped_column(String(64))  # the group it is a child of
    replay_of: Mapped[str | None] = mapped_column(String(64))
    worker: Mapped[str | None] = mapped_column(String(120))
    duplicates: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    redeliveries: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    # the highest attempt number (a retry's number + 1) a deduped job's workers claimed:
    # ``attempts`` counts runs, and a crash's redelivery is one more run of the same attempt
    last_attempt: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    result: Mapped[Any | None] = mapped_column(JSONB)  # the return value, redacted and capped

    __table_args__ = (
        CheckConstraint(
            "state IN (" + ", ".join(f"'{s}'" for s in LEDGER_STATES) + ")", name="state_known"
        ),
        Index("ix_job_ledger_order_id", "order_id", postgresql_where="order_id IS NOT NULL"),
        Index("ix_job_ledger_user_id", "user_id", postgresql_where="user_id IS NOT NULL"),
        Index("ix_job_ledger_group_id", "group_id", postgresql_where="group_id IS NOT NULL"),
        Index("ix_job_ledger_state_changed", "state", "state_changed_at"),
        Index("ix_job_ledger_actor_enqueued", "actor", "enqueued_at"),
        Index("ix_job_ledger_changed", "state_changed_at"),
    )


class OutboxMessage(Base):
    """A message written in the business transaction; published after commit, or by the relay."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    message_id: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    queue: Mapped[str] = mapped_column(String(120), nullable=False)
    body: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    delay_ms: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )
    # set: the relay publishes the row once the database clock passes it (a long delay, or a
    # job's send committed with its outcome); NULL: published after commit by its sender
    due_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_outbox_due_at", "due_at", postgresql_where="due_at IS NOT NULL"),)
