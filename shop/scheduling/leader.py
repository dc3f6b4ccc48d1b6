"""Leader election: a PostgreSQL session advisory lock held on a dedicated connection.

The lock lives as long as the connection: a leader that dies (even by SIGKILL) loses it as
soon as PostgreSQL sees the socket close, and another scheduler's next ``pg_try_advisory_lock``
wins. The leader re-checks that its connection still holds the lock before every firing step;
when the check fails or the connection breaks it stops firing at once. The holder is recorded
in ``scheduler_leader`` (host, pid, since, heartbeat) for the CLI.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

import psycopg2
from sqlalchemy import Connection, text

logger = logging.getLogger(__name__)

# A bigint lock key below 2**32: pg_locks shows it as classid 0, objid LOCK_KEY, objsubid 1.
LOCK_KEY = 0x5C4E_D004

_HELD_BY = """
    SELECT EXISTS (
        SELECT 1 FROM pg_locks
        WHERE locktype = 'advisory' AND classid = 0 AND objid = {key} AND objsubid = 1
          AND granted AND pid = {pid}
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
    )
"""
HELD_BY_ME = _HELD_BY.format(key=LOCK_KEY, pid="pg_backend_pid()")
HELD_BY_BACKEND = _HELD_BY.format(key=LOCK_KEY, pid=":backend")  # SQLAlchemy bind parameter
LEADER_COLUMNS = "host, pid, backend_pid, since, heartbeat_at"
OURS = "id = 1 AND backend_pid = pg_backend_pid()"
HEARTBEAT = f"UPDATE scheduler_leader SET heartbeat_at = now() WHERE {OURS}"


class Leadership:
    """Try to become, or stay, the one scheduler that fires.

    Parameters:
      dsn: libpq connection string of the shop's database.
      timeout_s: longest a lock check may take (statement timeout and TCP keepalives derive
        from it), so a leader cut off from PostgreSQL notices within a few ticks.
    """

    def __init__(self, dsn: str, *, timeout_s: float = 2.0) -> None:
        self.dsn = dsn
        self.timeout_s = timeout_s
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.leading = False
        self._conn: Any = None

    def ensure(self) -> bool:
        """Acquire the lock, or verify it is still held; False (and no firing) on any doubt."""
        try:
            if self._conn is None:
                self._conn = self._connect()
            with self._conn.cursor() as cur:
                if self.leading:
                    cur.execute(HELD_BY_ME)
                    if not cur.fetchone()[0]:
                        self._lose("the advisory lock is no longer held")
                        return False
                    cur.execute(HEARTBEAT)
                    if cur.rowcount == 0:  # the row was removed by hand: write it again
                        self._record(cur)
                    return True
                cur.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,))
                if cur.fetchone()[0]:
                    self._record(cur)
                    self.leading = True
                    logger.info("scheduler %s:%d is the leader", self.host, self.pid)
                return self.leading
        except psycopg2.Error as exc:
            if self.leading:
                self._lose(f"its database connection failed: {exc}".strip())
            else:
                logger.warning("leader election: database unreachable (%s)", str(exc).strip())
            self._close()
            return False

    def release(self) -> None:
        """Give the lock up (clean shutdown), so another scheduler takes over at its next tick."""
        if self._conn is not None and self.leading:
            try:
                with self._conn.cursor() as cur:
                    cur.execute(f"DELETE FROM scheduler_leader WHERE {OURS}")
                    cur.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
                logger.info("scheduler %s:%d released the leadership", self.host, self.pid)
            except psycopg2.Error:
                logger.warning("could not release the leadership cleanly; closing its connection")
        self.leading = False
        self._close()

    def _connect(self) -> Any:
        keepalive = max(1, int(self.timeout_s))
        conn = psycopg2.connect(
            self.dsn,
            connect_timeout=max(2, int(self.timeout_s * 2)),
            application_name=f"shopjobs-scheduler[{self.pid}]",
            keepalives=1,
            keepalives_idle=keepalive,
            keepalives_interval=keepalive,
            keepalives_count=2,
            options=(
                f"-c statement_timeout={int(self.timeout_s * 1000)}"
                f" -c tcp_keepalives_idle={keepalive} -c tcp_keepalives_interval={keepalive}"
                " -c tcp_keepalives_count=2"
            ),
        )
        conn.autocommit = True
        return conn

    def _record(self, cur: Any) -> None:
        cur.execute(
            """
            INSERT INTO scheduler_leader (id, host, pid, backend_pid, since, heartbeat_at)
            VALUES (1, %(host)s, %(pid)s, pg_backend_pid(), now(), now())
            ON CONFLICT (id) DO UPDATE SET host = EXCLUDED.host, pid = EXCLUDED.pid,
                backend_pid = EXCLUDED.backend_pid, since = EXCLUDED.since,
                heartbeat_at = EXCLUDED.heartbeat_at
            """,
            {"host": self.host, "pid": self.pid},
        )

    def _lose(self, why: str) -> None:
        logger.error(
            "scheduler %s:%d lost the leadership (%s); firing stopped", self.host, self.pid, why
        )
        self.leading = False
        self._close()

    def _close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg2.Error:
                pass
            self._conn = None


def current_leader(conn: Connection) -> dict[str, Any] | None:
    """The recorded leader, and whether its backend still holds the lock (for the CLI)."""
    row = conn.execute(text(f"SELECT {LEADER_COLUMNS} FROM scheduler_leader WHERE id = 1")).first()
    if row is None:
        return None
    holds = conn.execute(text(HELD_BY_BACKEND), {"backend": row.backend_pid}).scalar()
    return {
        "holder": f"{row.host}:{row.pid}",
        "host": row.host,
        "pid": row.pid,
        "since": row.since,
        "heartbeat_at": row.heartbeat_at,
        "holds_lock": bool(holds),
    }
