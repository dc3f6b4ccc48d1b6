"""The console's users and sessions, and the ledger indexes its pages read by.

Sessions live in the database (a token's hash, never the token), so a restart keeps them,
logging out ends them everywhere, and no signing secret has to be configured.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    String,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from jobcore.models import Base, LedgerEntry

ROLES = ("viewer", "operator", "admin")
SESSION_KINDS = ("browser", "token")


class ConsoleUser(Base):
    __tablename__ = "console_users"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    last_login_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    disabled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("role IN ('viewer', 'operator', 'admin')", name="role_known"),
    )


class ConsoleSession(Base):
    """A browser login (idle and absolute expiry, CSRF token) or a read-only API token."""

    __tablename__ = "console_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("console_users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    csrf_token: Mapped[str] = mapped_column(String(64), nullable=False)
    label: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    last_seen_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (CheckConstraint("kind IN ('browser', 'token')", name="kind_known"),)


# The jobs page filters by actor or queue and pages newest-first by state_changed_at; argument
# search is a containment query on args; a job's page lists its replays.
LEDGER_INDEXES = (
    Index("ix_job_ledger_actor_changed", LedgerEntry.actor, LedgerEntry.state_changed_at),
    Index("ix_job_ledger_queue_changed", LedgerEntry.queue, LedgerEntry.state_changed_at),
    Index(
        "ix_job_ledger_args",
        LedgerEntry.args,
        postgresql_using="gin",
        postgresql_ops={"args": "jsonb_path_ops"},
    ),
    Index(
        "ix_job_ledger_replay_of",
        LedgerEntry.replay_of,
        postgresql_where=text("replay_of IS NOT NULL"),
    ),
)
