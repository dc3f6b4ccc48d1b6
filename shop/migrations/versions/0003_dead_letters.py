"""dead letters, requeued-message markers, ledger redeliveries

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=True),
        sa.Column("queue", sa.String(length=120), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("traceback", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("replay_message_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letters")),
    )
    op.create_index(op.f("ix_dead_letters_message_id"), "dead_letters", ["message_id"])
    op.create_index(
        "ix_dead_letters_open",
        "dead_letters",
        ["queue", "created_at"],
        postgresql_where=sa.text("replayed_at IS NULL"),
    )
    op.create_table(
        "requeued_messages",
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_requeued_messages")),
    )
    op.add_column(
        "job_ledger", sa.Column("redeliveries", sa.Integer(), server_default="0", nullable=False)
    )


def downgrade() -> None:
    op.drop_column("job_ledger", "redeliveries")
    op.drop_table("requeued_messages")
    op.drop_index("ix_dead_letters_open", table_name="dead_letters")
    op.drop_index(op.f("ix_dead_letters_message_id"), table_name="dead_letters")
    op.drop_table("dead_letters")
