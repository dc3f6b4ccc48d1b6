"""least-privilege roles: application, backup, read-only (group roles; logins join them)

Every process connected as the ``postgres`` superuser, so a bug or an injected statement could
drop a table or erase payments. These group roles (NOLOGIN) carry the privileges; an operator
creates the login roles and makes them members:

    CREATE ROLE shop_worker LOGIN PASSWORD '...' IN ROLE shopjobs_app;
    CREATE ROLE shop_backup LOGIN PASSWORD '...' CREATEDB IN ROLE shopjobs_backup;  -- scratch restores
    CREATE ROLE shop_console LOGIN PASSWORD '...' IN ROLE shopjobs_readonly;

- migration owner: whoever runs ``alembic upgrade`` owns the tables; only it has DDL.
- ``shopjobs_app``: SELECT, INSERT, UPDATE on every table, DELETE except on the money and
  evidence tables (payments, refunds, payment_events, audit_log), no TRUNCATE, no DDL
  (no CREATE on the schema; DROP and ALTER need ownership), sequences it inserts through.
- ``shopjobs_backup``: SELECT on every table and sequence (pg_dump).
- ``shopjobs_readonly``: SELECT on every table (reports, the console's viewers).

Roles belong to the cluster, not the database: they are created once (several databases, such
as the tests', share them) and a downgrade revokes this database's grants without dropping them.

Revision ID: 0013
Revises: 0010
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0011"  # after the console (0011)
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP, BACKUP, READONLY = "shopjobs_app", "shopjobs_backup", "shopjobs_readonly"
NO_DELETE = ("payments", "refunds", "payment_events", "audit_log")


def _create_role(name: str) -> None:
    # made by an administrator beforehand, the owner needs no CREATEROLE (it is only asked for
    # when a role is missing); two databases migrating at once may both try: the loser's
    # duplicate is not an error
    op.execute(f"""
        DO $$ BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{name}') THEN
                CREATE ROLE {name} NOLOGIN;
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END $$""")


def upgrade() -> None:
    for role in (APP, BACKUP, READONLY):
        _create_role(role)
    op.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    op.execute(f"GRANT USAGE ON SCHEMA public TO {APP}, {BACKUP}, {READONLY}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {APP}")
    op.execute(f"REVOKE DELETE, TRUNCATE ON {', '.join(NO_DELETE)} FROM {APP}")
    op.execute(f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {APP}")
    op.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {BACKUP}, {READONLY}")
    op.execute(f"GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO {BACKUP}")
    # tables of later migrations (created by the same owner) get the same grants
    op.execute(
        "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {APP}"
    )
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO {BACKUP}, {READONLY}"
    )
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {APP}"
    )
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON SEQUENCES TO {BACKUP}")


def downgrade() -> None:
    roles = f"{APP}, {BACKUP}, {READONLY}"
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON TABLES FROM {roles}")
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON SEQUENCES FROM {roles}")
    op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {roles}")
    op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {roles}")
    op.execute(f"REVOKE USAGE ON SCHEMA public FROM {roles}")
    op.execute("GRANT CREATE ON SCHEMA public TO PUBLIC")
