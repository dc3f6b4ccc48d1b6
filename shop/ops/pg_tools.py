"""pg_dump and pg_restore, driven from Python: consistent dumps, scratch restores, row counts.

A dump and the row counts recorded beside it come from the same exported snapshot, so a
restore can be compared table by table even while the shop keeps writing.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import uuid
from collections.abc import Iterator, Sequence

import psycopg2
from psycopg2 import sql
from sqlalchemy.engine import URL, make_url

from jobcore.errors import PermanentError, TransientError
from shop import dbadmin


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg2://", "postgresql://", 1)


def tool_connection(url: str) -> tuple[str, dict[str, str]]:
    """The DSN for a libpq tool's argv, without its password, and the environment that carries it.

    Anything in argv is readable by every user of the host (``ps``, /proc/<pid>/cmdline); the
    environment of a process is readable only by its user and root, so the password goes there.
    """
    parsed = make_url(_libpq(url))
    env = dict(os.environ)
    env.pop("PGPASSWORD", None)
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    # URL.set(password=None) keeps the password (None means "unchanged"): build it without one
    bare = URL.create(
        parsed.drivername,
        parsed.username,
        None,
        parsed.host,
        parsed.port,
        parsed.database,
        parsed.query,
    )
    dsn = bare.render_as_string(hide_password=False)
    return dsn, env


def tool(bin_dir: str, name: str) -> str:
    path = os.path.join(bin_dir, name)
    if not os.access(path, os.X_OK):
        raise PermanentError(f"{path} is missing or not executable (set SHOPJOBS_PG_BIN_DIR)")
    return path


def check_versions(bin_dir: str, database_url: str) -> int:
    """The server's major version; PermanentError when pg_dump's major version differs from it."""
    out = subprocess.run(
        [tool(bin_dir, "pg_dump"), "--version"], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"(\d+)\.\d+", out)
    if not match:
        raise PermanentError(f"cannot read pg_dump's version from {out.strip()!r}")
    with (
        contextlib.closing(psycopg2.connect(_libpq(database_url), connect_timeout=5)) as conn,
        conn.cursor() as cur,
    ):
        cur.execute("SHOW server_version_num")
        server = int(cur.fetchone()[0]) // 10000
    if int(match.group(1)) != server:
        raise PermanentError(
            f"pg_dump {match.group(1)} cannot be trusted with a PostgreSQL {server} server"
        )
    return server


def existing_tables(database_url: str, wanted: Sequence[str]) -> list[str]:
    with (
        contextlib.closing(psycopg2.connect(_libpq(database_url), connect_timeout=5)) as conn,
        conn.cursor() as cur,
    ):
        cur.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename = ANY(%s)",
            (list(wanted),),
        )
        found = {row[0] for row in cur}
    return [t for t in wanted if t in found]


def count_rows(cur: object, tables: Sequence[str]) -> dict[str, int]:
    counts = {}
    for table in tables:
        cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))  # type: ignore[attr-defined]
        counts[table] = int(cur.fetchone()[0])  # type: ignore[attr-defined]
    return counts


def dump(
    bin_dir: str, database_url: str, tables: Sequence[str], path: str, timeout_s: float
) -> dict[str, int]:
    """``pg_dump -Fc`` of ``tables`` into ``path``; returns the row counts of the dumped snapshot."""
    dsn = _libpq(database_url)
    with contextlib.closing(psycopg2.connect(dsn, connect_timeout=5)) as conn:
        conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
        with conn.cursor() as cur:
            cur.execute("SELECT pg_export_snapshot()")
            snapshot = cur.fetchone()[0]
            counts = count_rows(cur, tables)
            tool_dsn, env = tool_connection(database_url)
            command = [
                tool(bin_dir, "pg_dump"),
                "-Fc",
                "--no-owner",
                "--no-privileges",
                f"--snapshot={snapshot}",
                "-f",
                path,
                "-d",
                tool_dsn,
            ]
            for table in tables:
                command += ["-t", f"public.{table}"]
            _run(
                command, timeout_s, "pg_dump", TransientError, env
            )  # the server may be back on retry
        conn.rollback()
    return counts


@contextlib.contextmanager
def scratch_database(database_url: str) -> Iterator[str]:
    """A new empty database beside the shop's, dropped afterwards whatever happens."""
    name = f"shopjobs_scratch_{uuid.uuid4().hex[:16]}"
    url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
    dbadmin.create_database(url)
    try:
        yield url
    finally:
        dbadmin.drop_database(url)


def restore(bin_dir: str, path: str, database_url: str, timeout_s: float) -> None:
    """``pg_restore`` the whole file, stopping at the first error (a damaged file fails here)."""
    tool_dsn, env = tool_connection(database_url)
    _run(
        [
            tool(bin_dir, "pg_restore"),
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "-d",
            tool_dsn,
            path,
        ],
        timeout_s,
        "pg_restore",
        env=env,
    )


def restored_counts(database_url: str, tables: Sequence[str]) -> dict[str, int]:
    present = set(existing_tables(database_url, tables))
    with (
        contextlib.closing(psycopg2.connect(_libpq(database_url), connect_timeout=5)) as conn,
        conn.cursor() as cur,
    ):
        counts = count_rows(cur, [t for t in tables if t in present])
    return counts


def _run(
    command: list[str],
    timeout_s: float,
    what: str,
    error: type[Exception] = PermanentError,
    env: dict[str, str] | None = None,
) -> None:
    try:
        # errors="replace": a damaged dump makes pg_restore echo its raw bytes in the error
        done = subprocess.run(
            command,
            check=False,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout_s,
            env=env,
        )
    except subprocess.TimeoutExpired:
        raise TransientError(f"{what} did not finish within {timeout_s:.0f} s") from None
    if done.returncode != 0:
        raise error(f"{what} exited with {done.returncode}: {done.stderr.strip()[-800:]}")
