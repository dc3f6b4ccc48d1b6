"""Creating, migrating and dropping databases: for the README's commands, test fixtures and benches."""

from __future__ import annotations

import os
from typing import Any

import psycopg2
from psycopg2 import sql
from sqlalchemy.engine import make_url

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def admin_connection(url: str) -> Any:
    u = make_url(url)
    conn = psycopg2.connect(
        host=u.host or "127.0.0.1",
        port=u.port or 5432,
        user=u.username or "postgres",
        password=u.password,
        dbname="postgres",
        connect_timeout=5,
    )
    conn.autocommit = True
    return conn


def database_exists(url: str) -> bool:
    with admin_connection(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (make_url(url).database,))
        return cur.fetchone() is not None


def create_database(url: str, *, recreate: bool = False) -> None:
    """Create the URL's database (dropping it first when ``recreate``)."""
    if recreate:
        drop_database(url)
    if database_exists(url):
        return
    conn = admin_connection(url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL("CREATE DATABASE {}").format(sql.Identifier(make_url(url).database))
            )
    finally:
        conn.close()


def hold_exclusive_use(url: str, purpose: str) -> Any:
    """An open admin connection holding an advisory lock named after ``url``'s database: a
    second holder is refused at once (two main jobs recreating one database would wreck each
    other). The lock lasts as long as the returned connection stays open."""
    conn = admin_connection(url)
    name = make_url(url).database
    with conn.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (f"{purpose}:{name}",))
        (got,) = cur.fetchone()
    if not got:
        conn.close()
        raise RuntimeError(
            f"another {purpose} is using database {name!r}; wait for it, or give this one "
            "its own names (SHOPJOBS_MAIN_VHOST, SHOPJOBS_MAIN_DATABASE_URL)"
        )
    return conn


def drop_database(url: str) -> None:
    conn = admin_connection(url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(make_url(url).database)
                )
            )
    finally:
        conn.close()


def migrate(url: str, revision: str = "head") -> None:
    """``alembic upgrade head`` against ``url``."""
    from alembic import command
    from alembic.config import Config

    cfg = Config(os.path.join(ROOT, "alembic.ini"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    command.upgrade(cfg, revision)
