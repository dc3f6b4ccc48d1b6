"""Dead letters: every message that failed for good, with what is needed to understand and replay it.

RabbitMQ's .XQ copy expires (7 days) and lacks the exception and traceback; this table keeps
the whole body, the final error, the attempts and the reason, until an operator purges it.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, DateTime, Index, Integer, LargeBinary, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from jobcore.models.base import Base

REASONS = (
    "failed",
    "permanent_error",
    "business_outcome",
    "unknown_actor",
    "undecodable",
    "crashed_worker",
    "age_limit",
    "rejected",
)


class DeadLetter(Base):
    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    message_id: Mapped[str | None] = mapped_column(String(64), index=True)
    queue: Mapped[str] = mapped_column(String(120), nullable=False)
    actor: Mapped[str | None] = mapped_column(String(120))
    reason: Mapped[str] = mapped_column(String(32), nullable=False)
    error: Mapped[str | None] = mapped_column(Text)
    traceback: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    body: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    replayed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    replay_message_id: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index(
            "ix_dead_letters_open", "queue", "created_at", postgresql_where="replayed_at IS NULL"
        ),
    )


class RequeuedMessage(Base):
    """Messages a worker handed back unstarted (shutdown, lost connection): their redelivery is
    not a crash, so the crash guard does not count it."""

    __tablename__ = "requeued_messages"

    message_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class CrashSuspect(Base):
    """A redelivered message whose worker died while running it: it runs alone in its process;
    ``lone_runs`` counts the lone runs its worker died in (``running_since`` set while one runs),
    and at ``jobcore.ledger.store.LONE_DEATHS`` it is the culprit."""

    __tablename__ = "crash_suspects"

    message_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    actor: Mapped[str] = mapped_column(String(120), nullable=False)
    lone_runs: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    running_since: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    worker: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
