"""job_ledger: state 'scheduled' (a delayed send held in PostgreSQL until its due time)

Revision ID: 0014
Revises: 0012
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0012"  # after the outbox's due time (0012)
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = ("enqueued", "running", "retrying", "succeeded", "failed", "dead", "skipped", "cancelled")
AFTER = ("scheduled", *BEFORE)


def _known(states: tuple[str, ...]) -> None:
    # NOT VALID then VALIDATE: the check of existing rows takes no lock that blocks writers
    op.execute("ALTER TABLE job_ledger DROP CONSTRAINT ck_job_ledger_state_known")
    listed = ", ".join(f"'{s}'" for s in states)
    op.execute(
        f"ALTER TABLE job_ledger ADD CONSTRAINT ck_job_ledger_state_known"
        f" CHECK (state IN ({listed})) NOT VALID"
    )
    op.execute("ALTER TABLE job_ledger VALIDATE CONSTRAINT ck_job_ledger_state_known")


def upgrade() -> None:
    _known(AFTER)


def downgrade() -> None:
    op.execute("UPDATE job_ledger SET state = 'enqueued' WHERE state = 'scheduled'")
    _known(BEFORE)
