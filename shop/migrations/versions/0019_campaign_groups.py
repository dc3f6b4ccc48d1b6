"""campaigns settle through a job group: drop the private completion barrier

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"  # after the ledger's last attempt (0018); groups are 0017
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A campaign's completion is its group's on_settled callback now (jobcore.groups): the
    # group's barrier row says whether it fired and the campaign row says it completed.
    op.drop_table("campaign_completions")


def downgrade() -> None:
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
