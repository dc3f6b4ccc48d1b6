"""job_ledger.last_attempt: the highest attempt number a deduped job's workers claimed

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"  # after the groups (0017)
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # a constant default: PostgreSQL adds the column without rewriting the table
    op.add_column(
        "job_ledger",
        sa.Column("last_attempt", sa.Integer(), nullable=False, server_default="0"),
    )
    # unfinished rows keep the bound the claim used before (their runs), so no message in
    # flight across the upgrade runs twice; finished rows are never claimed again
    op.execute(
        "UPDATE job_ledger SET last_attempt = attempts"
        " WHERE state NOT IN ('succeeded', 'failed', 'dead', 'skipped', 'cancelled')"
        " AND attempts > 0"
    )


def downgrade() -> None:
    op.drop_column("job_ledger", "last_attempt")
