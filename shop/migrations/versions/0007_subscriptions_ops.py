"""subscriptions, cleanup, backups and health: renewal keys, run statistics, backups, checks

Revision ID: 0007
Revises: 0009
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.text("now()")


def upgrade() -> None:
    op.add_column("subscriptions", sa.Column("anchor_day", sa.SmallInteger(), nullable=True))
    op.create_table(
        "subscription_deliveries",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("subscription_id", sa.BigInteger(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.CheckConstraint(
            "outcome IN ('ordered', 'out_of_stock')",
            name=op.f("ck_subscription_deliveries_outcome_known"),
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            ondelete="CASCADE",
            name=op.f("fk_subscription_deliveries_subscription_id_subscriptions"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            ondelete="SET NULL",
            name=op.f("fk_subscription_deliveries_order_id_orders"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscription_deliveries")),
        sa.UniqueConstraint("subscription_id", "due_date", name="uq_subscription_deliveries_due"),
    )
    op.create_table(
        "ops_runs",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("task", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "stats", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_runs")),
    )
    op.create_index("ix_ops_runs_task_started_at", "ops_runs", ["task", "started_at"])
    op.create_table(
        "backups",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("period_key", sa.String(length=120), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="running", nullable=False),
        sa.Column("storage_key", sa.String(length=300), nullable=True),
        sa.Column(
            "targets", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False
        ),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column(
            "table_counts",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("dump_seconds", sa.Float(), nullable=True),
        sa.Column("restore_seconds", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "kind IN ('daily', 'weekly', 'snapshot')", name=op.f("ck_backups_kind_known")
        ),
        sa.CheckConstraint(
            "status IN ('running', 'created', 'verified', 'corrupt', 'failed', 'deleted')",
            name=op.f("ck_backups_status_known"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backups")),
    )
    op.create_index("uq_backups_kind_period", "backups", ["kind", "period_key"], unique=True)
    op.create_table(
        "health_checks",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("component", sa.String(length=32), nullable=False),
        sa.Column("up", sa.Boolean(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("detail", sa.Text(), server_default="", nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_health_checks")),
    )
    op.create_index(
        "ix_health_checks_component_checked_at", "health_checks", ["component", "checked_at"]
    )


def downgrade() -> None:
    op.drop_table("health_checks")
    op.drop_table("backups")
    op.drop_table("ops_runs")
    op.drop_table("subscription_deliveries")
    op.drop_column("subscriptions", "anchor_day")
