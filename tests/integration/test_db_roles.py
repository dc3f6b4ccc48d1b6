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
from sqlalchemy.engine import make_url

import broker  # noqa: F401  (builds and installs the settings, configures the engine)
from jobcore.db import session_scope
from tests.support.factories import make_order, make_product

RUN = make_url(os.environ["SHOPJOBS_DATABASE_URL"]).database


def _admin() -> psycopg2.extensions.connection:
    conn = psycopg2.connect(
        make_url(os.environ["SHOPJOBS_DATABASE_URL"])
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
