"""The least-privilege roles of migration 0013: what a login of each role can and cannot do.

Login roles are made for this test (named after this run, dropped at the end) as an operator
would make them, members of the group roles the migration created.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg2
import pytest
from psycopg2 import errors
from sqlalchemy import exc, text
from sqlalchemy.engine import make_url

import broker  # noqa: F401  (builds and installs the settings, configures the engine)
from jobcore.db import session_scope
from tests import conftest
from tests.support.factories import make_order, make_product

RUN = make_url(os.environ["SHOPJOBS_DATABASE_URL"]).database


def _admin() -> psycopg2.extensions.connection:
    conn = psycopg2.connect(
        make_url(conftest.ADMIN_DATABASE_URL)
        .render_as_string(hide_password=False)
        .replace("postgresql+psycopg2://", "postgresql://")
    )
    conn.autocommit = True
    return conn


@pytest.fixture()
def login(clean) -> Iterator:
    """``login(group)``: a connection as a new login role that is a member of ``group``."""
    admin, made, opened = _admin(), [], []

    def connect(group: str) -> psycopg2.extensions.connection:
        name = f"{RUN}_{group}"[:63]
        with admin.cursor() as cur:
            cur.execute(f"DROP ROLE IF EXISTS {name}")
            cur.execute(f"CREATE ROLE {name} LOGIN PASSWORD 'Role-test-pw-1' IN ROLE {group}")
        made.append(name)
        url = make_url(os.environ["SHOPJOBS_DATABASE_URL"]).set(
            username=name, password="Role-test-pw-1"
        )
        conn = psycopg2.connect(
            url.render_as_string(hide_password=False).replace(
                "postgresql+psycopg2://", "postgresql://"
            )
        )
        conn.autocommit = True
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        conn.close()
    with admin.cursor() as cur:
        for name in made:
            cur.execute(f"DROP OWNED BY {name}")
            cur.execute(f"DROP ROLE {name}")
    admin.close()


def _fails(conn, statement: str, error: type[Exception] = errors.InsufficientPrivilege) -> bool:
    with conn.cursor() as cur:
        try:
            cur.execute(statement)
        except error:
            return True
    return False


def _shop() -> int:
    with session_scope() as s:
        order = make_order(s, lines=[(make_product(s, stock=5), 1)])
        return order.id


def test_the_application_role_cannot_drop_a_table_or_delete_payments_but_runs_the_shop(login):
    order_id = _shop()
    app = login("shopjobs_app")
    # it cannot: drop or alter a table, create one, delete or truncate payments and the evidence
    assert _fails(app, "DROP TABLE orders")
    assert _fails(app, "ALTER TABLE orders ADD COLUMN x int")
    assert _fails(app, "CREATE TABLE mine (id int)")
    for table in ("payments", "refunds", "payment_events", "audit_log"):
        assert _fails(app, f"DELETE FROM {table}"), table
        assert _fails(app, f"TRUNCATE {table}"), table
    # and it can do the shop's work: read, insert, update, delete where deleting is a job's work
    with app.cursor() as cur:
        cur.execute("SELECT count(*) FROM orders")
        assert cur.fetchone()[0] == 1
        cur.execute(
            "INSERT INTO payments (order_id, idempotency_key, amount_cents) "
            "VALUES (%s, %s, 100) RETURNING id",
            (order_id, f"role-test-{order_id}"),
        )
        cur.execute("UPDATE payments SET amount_cents = 200 WHERE order_id = %s", (order_id,))
        assert cur.rowcount == 1
        cur.execute("DELETE FROM outbox")
    with _admin() as admin, admin.cursor() as cur:  # the table is still there, with its row
        cur.execute("SELECT amount_cents FROM payments WHERE order_id = %s", (order_id,))
        assert cur.fetchone() == (200,)


def test_the_read_only_role_reads_and_writes_nothing(login):
    _shop()
    viewer = login("shopjobs_readonly")
    with viewer.cursor() as cur:
        cur.execute("SELECT count(*) FROM orders")
        assert cur.fetchone()[0] == 1
    assert _fails(viewer, "UPDATE orders SET status = status")
    assert _fails(viewer, "DELETE FROM job_ledger")
    assert _fails(viewer, "DROP TABLE orders")


def test_the_backup_role_can_read_every_table_for_a_dump(login):
    _shop()
    backup = login("shopjobs_backup")
    with backup.cursor() as cur:
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        tables = [row[0] for row in cur]
        for table in tables:
            cur.execute(f'SELECT count(*) FROM "{table}"')
    assert "payments" in tables and "job_ledger" in tables
    assert _fails(backup, "DELETE FROM orders")


def test_the_tests_and_their_workers_run_as_the_application_role_which_cannot_drop_or_delete_payments(
    clean,
):
    # Given the run's own engine (the test process and every worker it starts share the URL)
    order_id = _shop()
    with session_scope() as s:
        s.execute(
            text(
                "INSERT INTO payments (order_id, idempotency_key, amount_cents) "
                "VALUES (:o, 'own-login', 100)"
            ),
            {"o": order_id},
        )
    with session_scope() as s:
        who, is_super, is_app = s.execute(
            text(
                "SELECT current_user, rolsuper, pg_has_role(current_user, 'shopjobs_app', 'member') "
                "FROM pg_roles WHERE rolname = current_user"
            )
        ).one()
    # Then it is a login of the application role, not a superuser nor the owner
    assert (is_super, is_app) == (False, True), who
    assert who == make_url(os.environ["SHOPJOBS_DATABASE_URL"]).username
    # When it tries to drop a table or erase payments, Then the server refuses
    for statement in ("DROP TABLE payments", "DELETE FROM payments", "TRUNCATE audit_log"):
        with (
            pytest.raises(exc.ProgrammingError, match="permission denied|must be owner"),
            session_scope() as s,
        ):
            s.execute(text(statement))
    with session_scope() as s:
        assert s.scalar(text("SELECT count(*) FROM payments")) == 1


def test_the_application_role_prunes_the_audit_log_only_past_the_retention_floor(clean):
    # Given audit rows 100 and 10 days old, written by the application role itself
    with session_scope() as s:
        s.execute(
            text(
                "INSERT INTO audit_log (actor, action, created_at) "
                "SELECT 'admin', 'price_changed', now() - make_interval(days => d) "
                "FROM unnest(ARRAY[100, 100, 10]) AS d"
            )
        )
    # When it deletes directly, Then it may not (the audit log is evidence)
    with (
        pytest.raises(exc.ProgrammingError, match="permission denied"),
        session_scope() as s,
    ):
        s.execute(text("DELETE FROM audit_log WHERE created_at < now() - interval '90 days'"))
    # And through the owner's prune_audit_log (migration 0016) it removes only old rows, and a
    # cutoff inside the 30-day floor is refused, so nothing recent can be erased this way either
    with (
        pytest.raises(exc.ProgrammingError, match="kept at least 30 days"),
        session_scope() as s,
    ):
        s.execute(text("SELECT prune_audit_log(now() - interval '1 day', 100)"))
    with session_scope() as s:
        assert s.scalar(text("SELECT prune_audit_log(now() - interval '90 days', 100)")) == 2
        assert s.scalar(text("SELECT count(*) FROM audit_log")) == 1
