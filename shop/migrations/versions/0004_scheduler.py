"""scheduler: one row per fire (dedupe), per-schedule state and overrides, the leader

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "schedule_fires",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("schedule", sa.String(length=120), nullable=False),
        sa.Column("fire_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "reason IN ('on_time', 'catch_up', 'manual')",
            name=op.f("ck_schedule_fires_reason_known"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedule_fires")),
        sa.UniqueConstraint("message_id", name=op.f("uq_schedule_fires_message_id")),
        sa.UniqueConstraint("schedule", "fire_time", name="uq_schedule_fires_schedule_fire_time"),
    )
    op.create_table(
        "schedule_state",
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("paused", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("checked_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_fire_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_message_id", sa.String(length=64), nullable=True),
        sa.Column("misfires", sa.Integer(), server_default="0", nullable=False),
        sa.Column("override_trigger", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("override_args", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_schedule_state")),
    )
    op.create_table(
        "scheduler_leader",
        sa.Column("id", sa.SmallInteger(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("backend_pid", sa.Integer(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_scheduler_leader_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduler_leader")),
    )


def downgrade() -> None:
    op.drop_table("scheduler_leader")
    op.drop_table("schedule_state")
    op.drop_table("schedule_fires")
