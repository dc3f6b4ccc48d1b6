"""One database's logins, as an operator makes them: the migration owner and one member of each
group role of migration 0013 (application, backup, read-only).

The tests and the main job run every process under the login of its role, so a grant missing
from a migration fails there, not first in production. A superuser URL (``admin``) creates the
logins and the database (owned by the migration owner) and drops them afterwards.
"""

from __future__ import annotations

import dataclasses

from psycopg2 import sql
from sqlalchemy.engine import make_url

from shop import dbadmin

# the group roles of migration 0013; the logins below are their members
GROUPS = {"app": "shopjobs_app", "backup": "shopjobs_backup", "readonly": "shopjobs_readonly"}
# what each login may do beyond its group: scratch restores create (and drop) their database
EXTRA = {"owner": "", "app": "", "backup": "CREATEDB", "readonly": ""}
ROLES = ("owner", *GROUPS)
# server-side defaults of the logins that do not set their own at connect: the application sets
# statement, lock and idle timeouts through libpq options (SHOPJOBS_DB_*_MS), pg_dump sets its
# own (none: a dump is long, its snapshot connection idles in its transaction meanwhile)
ROLE_SETTINGS = {
    # a migration waiting for a lock holds every query of the table behind it: fail and retry
    "owner": {"lock_timeout": "10s"},
    "app": {},
    "backup": {},
    # a runaway report or an open viewer transaction must not hold the database
    "readonly": {"statement_timeout": "300s", "idle_in_transaction_session_timeout": "60s"},
}


@dataclasses.dataclass(frozen=True)
class Logins:
    """SQLAlchemy URLs of one database, one per role (passwords included)."""

    admin: str  # a superuser: creates and drops the database and the logins, nothing else
    owner: str  # runs ``alembic upgrade``: owns the tables
    app: str  # workers, scheduler, relay, CLI, console, webhook endpoint
    backup: str  # pg_dump and the scratch restores that verify a dump
    readonly: str  # reports and viewers

    def url(self, kind: str) -> str:
        return str(getattr(self, kind))


def logins_for(admin_url: str, prefix: str, password: str) -> Logins:
    """The URLs of ``admin_url``'s database for logins named ``<prefix>_<role>``."""
    base = make_url(admin_url)

    def as_login(kind: str) -> str:
        return base.set(username=f"{prefix}_{kind}"[:63], password=password).render_as_string(
            hide_password=False
        )

    return Logins(
        admin=admin_url,
        owner=as_login("owner"),
        app=as_login("app"),
        backup=as_login("backup"),
        readonly=as_login("readonly"),
    )


def _username(url: str) -> str:
    return str(make_url(url).username)


def create(logins: Logins, *, recreate: bool = False) -> None:
    """The group roles (if missing), the four logins and the database owned by the owner.

    The group roles are made here by the superuser, so the owner needs no CREATEROLE: migration
    0013 finds them and only grants.
    """
    if recreate:
        dbadmin.drop_database(logins.admin)
    conn = dbadmin.admin_connection(logins.admin)
    try:
        with conn.cursor() as cur:
            for group in GROUPS.values():
                cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (group,))
                if cur.fetchone() is None:
                    cur.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(group)))
            # the console's pages read as the read-only role (SET LOCAL ROLE); it adds no
            # privilege to the application role, which may read every table already
            cur.execute(
                sql.SQL("GRANT {} TO {}").format(
                    sql.Identifier(GROUPS["readonly"]), sql.Identifier(GROUPS["app"])
                )
            )
            for kind in ROLES:
                url = make_url(logins.url(kind))
                name = sql.Identifier(str(url.username))
                cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (url.username,))
                verb = "ALTER" if cur.fetchone() else "CREATE"
                cur.execute(
                    sql.SQL(verb + " ROLE {} LOGIN " + EXTRA[kind] + " PASSWORD {}").format(
                        name, sql.Literal(url.password)
                    )
                )
                if kind in GROUPS:
                    cur.execute(
                        sql.SQL("GRANT {} TO {}").format(sql.Identifier(GROUPS[kind]), name)
                    )
                for setting, value in ROLE_SETTINGS[kind].items():
                    cur.execute(
                        sql.SQL("ALTER ROLE {} SET {} = {}").format(
                            name, sql.Identifier(setting), sql.Literal(value)
                        )
                    )
            if not dbadmin.database_exists(logins.admin):
                cur.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(str(make_url(logins.admin).database)),
                        sql.Identifier(_username(logins.owner)),
                    )
                )
    finally:
        conn.close()


def drop(logins: Logins) -> None:
    """Drop the database and the four logins (what they own elsewhere, such as a leftover
    scratch database of the backup login, goes with them)."""
    dbadmin.drop_database(logins.admin)
    conn = dbadmin.admin_connection(logins.admin)
    try:
        with conn.cursor() as cur:
            for kind in ROLES:
                name = _username(logins.url(kind))
                cur.execute(
                    "SELECT datname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba "
                    "WHERE r.rolname = %s",
                    (name,),
                )
                for (datname,) in cur.fetchall():
                    cur.execute(
                        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                            sql.Identifier(datname)
                        )
                    )
                cur.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
    finally:
        conn.close()
