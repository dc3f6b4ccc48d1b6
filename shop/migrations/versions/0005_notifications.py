"""notifications: delivery state, retries, campaigns, recurring schedules, e-mail log hand-off

Revision ID: 0005
Revises: 0007
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATES = ("pending", "sending", "retrying", "sent", "failed", "skipped")


def upgrade() -> None:
    op.create_table(
        "notification_campaigns",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("template", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), server_default="email", nullable=False),
        sa.Column("headline", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("chunk_size", sa.Integer(), server_default="200", nullable=False),
        sa.Column("total", sa.Integer(), server_default="0", nullable=False),
        sa.Column("chunks_total", sa.Integer(), server_default="0", nullable=False),
        sa.Column("chunks_done", sa.Integer(), server_default="0", nullable=False),
        sa.Column("sent", sa.Integer(), server_default="0", nullable=False),
        sa.Column("failed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("status", sa.String(length=16), server_default="running", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'completed')",
            name=op.f("ck_notification_campaigns_status_known"),
        ),
        sa.CheckConstraint("chunk_size > 0", name=op.f("ck_notification_campaigns_chunk_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_campaigns")),
        sa.UniqueConstraint("name", name=op.f("uq_notification_campaigns_name")),
    )
    op.create_table(
        "campaign_chunks",
        sa.Column("campaign_id", sa.BigInteger(), nullable=False),
        sa.Column("chunk", sa.Integer(), nullable=False),
        sa.Column("queued", sa.Integer(), nullable=False),
        sa.Column(
            "done_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["notification_campaigns.id"],
            ondelete="CASCADE",
            name=op.f("fk_campaign_chunks_campaign_id_notification_campaigns"),
        ),
        sa.PrimaryKeyConstraint("campaign_id", "chunk", name=op.f("pk_campaign_chunks")),
    )
    op.create_table(
        "campaign_completions",
        sa.Column("campaign_id", sa.BigInteger(), nullable=False),
        sa.Column("sent", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("callback_message_id", sa.String(length=64), nullable=False),
        sa.Column(
            "fired_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("callback_ran_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["notification_campaigns.id"],
            ondelete="CASCADE",
            name=op.f("fk_campaign_completions_campaign_id_notification_campaigns"),
        ),
        sa.PrimaryKeyConstraint("campaign_id", name=op.f("pk_campaign_completions")),
    )
    op.create_table(
        "notification_schedules",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("template", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), server_default="email", nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("every_s", sa.Integer(), nullable=False),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("runs", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "every_s >= 60", name=op.f("ck_notification_schedules_every_at_least_a_minute")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            ondelete="CASCADE",
            name=op.f("fk_notification_schedules_user_id_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_schedules")),
        sa.UniqueConstraint("name", name=op.f("uq_notification_schedules_name")),
    )
    op.create_index(
        "ix_notification_schedules_next_run_at", "notification_schedules", ["next_run_at"]
    )
    op.add_column(
        "notifications", sa.Column("attempts", sa.Integer(), server_default="0", nullable=False)
    )
    op.add_column("notifications", sa.Column("last_error", sa.Text(), nullable=True))
    op.add_column(
        "notifications", sa.Column("provider_message_id", sa.String(length=255), nullable=True)
    )
    op.add_column("notifications", sa.Column("campaign_id", sa.BigInteger(), nullable=True))
    op.add_column(
        "notifications", sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "notifications", sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "notifications", sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_foreign_key(
        op.f("fk_notifications_campaign_id_notification_campaigns"),
        "notifications",
        "notification_campaigns",
        ["campaign_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.create_check_constraint(
        op.f("ck_notifications_status_known"),
        "notifications",
        "status IN (" + ", ".join(f"'{s}'" for s in STATES) + ")",
    )
    op.create_index("ix_notifications_campaign_id", "notifications", ["campaign_id"])
    op.create_index(
        "ix_notifications_due",
        "notifications",
        ["status", "send_at"],
        postgresql_where=sa.text("status IN ('pending', 'sending', 'retrying')"),
    )
    op.add_column("email_log", sa.Column("notification_id", sa.BigInteger(), nullable=True))
    op.add_column(
        "email_log", sa.Column("attempts", sa.Integer(), server_default="0", nullable=False)
    )
    op.create_foreign_key(
        op.f("fk_email_log_notification_id_notifications"),
        "email_log",
        "notifications",
        ["notification_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.create_index("ix_email_log_created_at", "email_log", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_email_log_created_at", table_name="email_log")
    op.drop_constraint(
        op.f("fk_email_log_notification_id_notifications"), "email_log", type_="foreignkey"
    )
    op.drop_column("email_log", "attempts")
    op.drop_column("email_log", "notification_id")
    op.drop_index("ix_notifications_due", table_name="notifications")
    op.drop_index("ix_notifications_campaign_id", table_name="notifications")
    op.drop_constraint(op.f("ck_notifications_status_known"), "notifications", type_="check")
    op.drop_constraint(
        op.f("fk_notifications_campaign_id_notification_campaigns"),
        "notifications",
        type_="foreignkey",
    )
    for column in (
        "settled_at",
        "claimed_until",
        "enqueued_at",
        "campaign_id",
        "provider_message_id",
        "last_error",
        "attempts",
    ):
        op.drop_column("notifications", column)
    op.drop_index("ix_notification_schedules_next_run_at", table_name="notification_schedules")
    op.drop_table("notification_schedules")
    op.drop_table("campaign_completions")
    op.drop_table("campaign_chunks")
    op.drop_table("notification_campaigns")
