"""groups: barrier rows, settled children, the ledger's group of each child

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0017"
down_revision: str | None = "0016"  # after the audit prune (0016)
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_groups",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("succeeded", sa.Integer, nullable=False, server_default="0"),
        sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("callbacks", JSONB, nullable=False, server_default="{}"),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("settled_at", sa.DateTime(timezone=True)),
        sa.Column("fired", JSONB),
    )
    op.create_table(
        "job_group_members",
        sa.Column("message_id", sa.String(64), primary_key=True),
        sa.Column("group_id", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
    )
    op.create_index("ix_job_group_members_group_id", "job_group_members", ["group_id"])
    op.add_column("job_ledger", sa.Column("group_id", sa.String(64)))
    op.create_index(
        "ix_job_ledger_group_id",
        "job_ledger",
        ["group_id"],
        postgresql_where=sa.text("group_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_job_ledger_group_id", table_name="job_ledger")
    op.drop_column("job_ledger", "group_id")
    op.drop_index("ix_job_group_members_group_id", table_name="job_group_members")
    op.drop_table("job_group_members")
    op.drop_table("job_groups")
