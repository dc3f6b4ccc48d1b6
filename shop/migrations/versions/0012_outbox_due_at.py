"""outbox: due time of a send held in PostgreSQL (long delays, job sends the relay publishes)

Revision ID: 0012
Revises: 0006
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0013"  # after roles (0013)
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("due_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_outbox_due_at", "outbox", ["due_at"], postgresql_where=sa.text("due_at IS NOT NULL")
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_due_at", table_name="outbox")
    op.drop_column("outbox", "due_at")
