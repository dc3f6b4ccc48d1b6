"""Bounds on every PostgreSQL connection, so no thread waits on libpq forever.

A database restart closes sockets, but a partition or a dead host leaves them silent: without
these, a thread blocked in libpq waits for TCP's own timeout (minutes to hours) while holding a
message and its ack. Connect gives up after 5 s; an idle connection is probed after 10 s and
dropped after 3 unanswered probes 3 s apart; data the server has not acknowledged for 15 s
drops the connection (``tcp_user_timeout``, which also bounds the keepalive probing); a
statement runs at most 30 s on the server (SHOPJOBS_DB_STATEMENT_TIMEOUT_MS, set by the settings). So a thread learns of a dead connection within
statement_timeout + 5 s, and the usual retry of the job takes over.
"""

from __future__ import annotations

from typing import Any

STATEMENT_TIMEOUT_MS = 30_000

TIMEOUTS: dict[str, Any] = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 3,
    "keepalives_count": 3,
    "tcp_user_timeout": 15_000,
}
# statement_timeout, lock_timeout and idle_in_transaction_session_timeout come from the settings
# (JobSettings.db_session_options, in the engine's options and in psycopg_dsn)
