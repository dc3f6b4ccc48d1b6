"""worker processes report the messages they hold, so a job waiting in a prefetch is not lost

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # {queue: messages delivered to the process and not yet acked}, written with each heartbeat
    # (jobcore.queue_depth adds them to a queue's ready messages)
    op.add_column(
        "worker_processes",
        sa.Column(
            "held", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
    )


def downgrade() -> None:
    op.drop_column("worker_processes", "held")
