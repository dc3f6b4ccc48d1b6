"""operations: crash suspects run alone, live worker processes, indexes for cancel and tail

Revision ID: 0009
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "crash_suspects",
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("lone_runs", sa.Integer(), server_default="0", nullable=False),
        sa.Column("running_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("worker", sa.String(length=120), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_crash_suspects")),
    )
    op.create_table(
        "worker_processes",
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column(
            "queues", postgresql.ARRAY(sa.String(length=120)), server_default="{}", nullable=False
        ),
        sa.Column("threads", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "started_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "heartbeat_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_worker_processes")),
    )
    op.create_index("ix_job_ledger_changed", "job_ledger", ["state_changed_at"])


def downgrade() -> None:
    op.drop_index("ix_job_ledger_changed", table_name="job_ledger")
    op.drop_table("worker_processes")
    op.drop_table("crash_suspects")
