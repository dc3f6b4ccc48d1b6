"""workflow primitives: unique-job keys, concurrency-limit slots, rate-limit buckets

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"  # after the ledger's scheduled state (0014)
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_unique_keys",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column(
            "claimed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "job_limit_slots",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("slot", sa.Integer, primary_key=True),
        sa.Column("holder", sa.String(120)),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "job_rate_buckets",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("tokens", sa.Float, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("job_rate_buckets")
    op.drop_table("job_limit_slots")
    op.drop_table("job_unique_keys")
