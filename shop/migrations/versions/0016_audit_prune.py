"""audit-log retention through one owner's function: the application role still cannot DELETE

The audit-log cleanup job deleted old rows with ``DELETE FROM audit_log``, which the application
role (0013) may not do: the audit log is evidence, and a bug or an injected statement of a
worker must not be able to erase recent entries. Rather than grant DELETE back, the owner
defines ``prune_audit_log(cutoff, batch)``, a SECURITY DEFINER function that deletes one batch
of rows older than ``cutoff`` and refuses a cutoff newer than ``KEEP_AT_LEAST`` days ago. The
application role may EXECUTE it and nothing more: the most a worker can remove is what the
retention policy would remove anyway.

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"  # after the workflow tables (0015)
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEEP_AT_LEAST = 30  # days; shop.settings' SHOPJOBS_AUDIT_LOG_KEEP_DAYS starts here too
SIGNATURE = "prune_audit_log(timestamptz, integer)"


def upgrade() -> None:
    op.execute(f"""
        CREATE FUNCTION prune_audit_log(cutoff timestamptz, batch integer) RETURNS integer
        LANGUAGE plpgsql SECURITY DEFINER
        SET search_path = pg_catalog, public
        AS $$
        DECLARE removed integer;
        BEGIN
            IF cutoff > now() - interval '{KEEP_AT_LEAST} days' THEN
                RAISE EXCEPTION 'audit rows are kept at least {KEEP_AT_LEAST} days (cutoff %)', cutoff
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            DELETE FROM public.audit_log WHERE id IN (
                SELECT id FROM public.audit_log WHERE created_at < cutoff
                ORDER BY id LIMIT batch FOR UPDATE SKIP LOCKED
            );
            GET DIAGNOSTICS removed = ROW_COUNT;
            RETURN removed;
        END $$""")
    op.execute(f"REVOKE ALL ON FUNCTION {SIGNATURE} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {SIGNATURE} TO shopjobs_app")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {SIGNATURE}")
