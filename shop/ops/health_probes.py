"""One probe per component the shop depends on; each answers (up, why) within a timeout.

Probes speak each party's real protocol: a libpq connection, an AMQP connection, an SMTP
greeting and NOOP, a storage write-read-delete, an HTTP request, and the scheduler's
heartbeat row in PostgreSQL.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import smtplib
from collections.abc import Callable

import httpx
import psycopg2

from jobcore import amqp
from shop.integrations import outbound
from shop.scheduling.leader import current_leader
from shop.settings import Settings
from shop.storage import open_storage

Probe = Callable[[Settings], str]


class Down(Exception):
    """The component answered, but not as a working one (the message says how)."""


def database(settings: Settings) -> str:
    connection = psycopg2.connect(settings.psycopg_dsn, connect_timeout=settings.health_timeout_s)
    with contextlib.closing(connection) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1")
        cur.fetchone()
    return "SELECT 1 answered"


def broker(settings: Settings) -> str:
    conn = amqp.connect(
        settings.amqp_url,
        socket_timeout=settings.health_timeout_s,
        stack_timeout=settings.health_timeout_s,
        connection_attempts=1,
        retry_delay=0,
    )
    try:
        conn.channel().close()
    finally:
        conn.close()
    return "AMQP connection and channel opened"


def smtp(settings: Settings) -> str:
    with smtplib.SMTP(
        settings.smtp_host, settings.smtp_port, timeout=settings.health_timeout_s
    ) as client:
        code, reply = client.noop()
        if code != 250:
            raise Down(f"NOOP answered {code} {reply.decode(errors='replace')[:80]}")
    return f"SMTP {settings.smtp_host}:{settings.smtp_port} answered NOOP"


def storage(settings: Settings) -> str:
    store = open_storage(settings.storage_url)
    key = f"health/probe-{os.getpid()}"
    written = store.put(key, b"health probe")
    seen = store.stat(key)
    store.delete(key)
    if seen is None or seen.sha256 != written.sha256:
        raise Down("a probe object did not read back as written")
    return "probe object written, read back and deleted"


def _http(url: str, settings: Settings) -> str:
    policy = outbound.Policy.for_urls(settings.outbound_allowed_hosts, url)
    try:
        with outbound.client(policy, httpx.Timeout(settings.health_timeout_s)) as http:
            response = http.get(url)
    except outbound.OutboundRefused as exc:
        raise Down(str(exc)) from None
    if response.status_code >= 500:
        raise Down(f"HTTP {response.status_code} from {url}")
    return f"HTTP {response.status_code}"


def payment(settings: Settings) -> str:
    return _http(settings.payment_url, settings)


def warehouse(settings: Settings) -> str:
    return _http(settings.warehouse_url, settings)


def carrier(settings: Settings) -> str:
    return _http(settings.carrier_url, settings)


def scheduler(settings: Settings) -> str:
    """Up when a leader is recorded, still holds its advisory lock, and its heartbeat is fresh."""
    from jobcore.db import get_engine

    with get_engine().connect() as conn:
        leader = current_leader(conn)
    if leader is None:
        raise Down("no scheduler leader recorded")
    if not leader["holds_lock"]:
        raise Down(f"leader {leader['holder']} no longer holds the advisory lock")
    age = (dt.datetime.now(dt.UTC) - leader["heartbeat_at"]).total_seconds()
    if age > settings.health_scheduler_stale_s:
        raise Down(f"leader {leader['holder']} last heartbeat {age:.0f} s ago")
    return f"leader {leader['holder']}, heartbeat {age:.1f} s ago"


PROBES: dict[str, Probe] = {
    "database": database,
    "broker": broker,
    "smtp": smtp,
    "storage": storage,
    "payment": payment,
    "warehouse": warehouse,
    "carrier": carrier,
    "scheduler": scheduler,
}
