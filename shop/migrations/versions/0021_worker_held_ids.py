"""worker processes list the ids of the messages they hold, so a lost job is found under load

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # [message id, ...] delivered to the process and not yet acked, written with each heartbeat
    # (jobcore.ledger.lost: a job held by a live process is waiting, not lost)
    op.add_column(
        "worker_processes",
        sa.Column(
            "held_ids", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False
        ),
    )


def downgrade() -> None:
    op.drop_column("worker_processes", "held_ids")
