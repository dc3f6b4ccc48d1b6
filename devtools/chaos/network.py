"""T5 and T6: the network between the workers and RabbitMQ or PostgreSQL goes silent.

T5 puts the fault proxy (userspace blackhole) between the worker group and RabbitMQ: AMQP
heartbeats must find the dead connection within 3 heartbeats. T6 puts it, inside a network
namespace whose link is cut, between the workers and PostgreSQL: libpq has no heartbeat, so
only the connection's timeouts (``jobcore.libpq``) can end a thread's wait; a probe with those
timeouts and a control probe without them show what a thread would do.
"""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg2
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from devtools import devservices
from devtools.chaos import load as shop_load
from devtools.chaos.harness import Harness, Outcome, at_progress
from devtools.chaos.load import Load
from devtools.chaos.netns import Partition
from devtools.chaos.proxy import FaultProxy
from devtools.chaos.scenarios import BACKOFF
from jobcore.db import session_scope
from jobcore.libpq import STATEMENT_TIMEOUT_MS, TIMEOUTS
from jobcore.models import LedgerEntry

_pause = threading.Event()


def _longest_job_s(since: datetime) -> float:
    with session_scope() as s:
        longest: Any = s.scalar(
            select(func.max(LedgerEntry.finished_at - LedgerEntry.started_at)).where(
                LedgerEntry.finished_at > since
            )
        )
    return round(longest.total_seconds(), 1) if longest is not None else 0.0


def _first_log_after(log: str, since: datetime, needles: tuple[str, ...]) -> float | None:
    """Seconds from ``since`` to the first log line after it that mentions a needle (JSON lines,
    or console lines that start with their ISO timestamp)."""
    for line in log.splitlines():
        if not any(n in line for n in needles):
            continue
        try:
            text = json.loads(line)["timestamp"] if line.startswith("{") else line.split(" ", 1)[0]
            stamp = datetime.fromisoformat(text)
        except (ValueError, KeyError, TypeError):
            continue
        if stamp.tzinfo is None:
            continue
        if stamp > since:
            return round((stamp - since).total_seconds(), 1)
    return None


def broker_partition(
    h: Harness, orders: int, blackhole_s: float = 20, heartbeat_s: int = 5
) -> Outcome:
    """T5: RabbitMQ unreachable for the workers (bytes stop, sockets stay open) ``blackhole_s``."""
    parts = urlsplit(os.environ["SHOPJOBS_AMQP_URL"])
    proxy = FaultProxy((parts.hostname or "127.0.0.1", parts.port or 5672)).start()
    host, port = proxy.address
    amqp = urlunsplit(parts._replace(netloc=f"{parts.username}:{parts.password}@{host}:{port}"))
    load = Load()
    products = shop_load.catalogue(load, h.rng)
    worker = h.workers(
        "t5",
        env={**BACKOFF, "SHOPJOBS_AMQP_URL": amqp, "SHOPJOBS_AMQP_HEARTBEAT": str(heartbeat_s)},
    )
    try:
        shop_load.orders(load, h.rng, orders, products)
        at_progress(load, 0.3)
        cut_at = datetime.now(UTC)
        proxy.set_mode("blackhole")
        _pause.wait(blackhole_s)
        proxy.set_mode("pass")
        healed = time.monotonic()
        evidence: dict[str, Any] = {"blackhole_s": blackhole_s, "heartbeat_s": heartbeat_s}
        outcome = h.finish(
            "T5",
            f"broker partition {blackhole_s:.0f}s (heartbeat {heartbeat_s}s)",
            load,
            1,
            evidence,
            healed,
            worker,
        )
        log = worker.log()
        outcome.evidence.update(
            {
                "dead_connection_found_s": _first_log_after(
                    log,
                    cut_at,
                    ("connection error", "Connection error", "ConnectionClosed", "heartbeat"),
                ),
                "longest_job_s": _longest_job_s(cut_at),
                "proxied_connections": proxy.accepted,
            }
        )
        return outcome
    finally:
        proxy.stop()


class _Probe(threading.Thread):
    """A connection through the partition that runs one query once the link is cut."""

    def __init__(self, dsn: str, **params: Any) -> None:
        super().__init__(daemon=True, name="partition-probe")
        self.conn = psycopg2.connect(dsn, **params)
        self.conn.autocommit = True
        self.go = threading.Event()
        self.failed_after: float | None = None

    def run(self) -> None:
        self.go.wait()
        started = time.monotonic()
        try:
            with self.conn.cursor() as cur:
                cur.execute("SELECT 1")
        except psycopg2.Error:
            self.failed_after = round(time.monotonic() - started, 1)


def database_partition(h: Harness, orders: int, blackhole_s: float = 30) -> Outcome:
    """T6: PostgreSQL unreachable for the workers, every packet dropped, ``blackhole_s``."""
    partition = Partition()
    proxy = FaultProxy(devservices.address("postgresql"), listen=partition.listen()).start()
    try:
        host, port = proxy.address
        url = make_url(os.environ["SHOPJOBS_DATABASE_URL"]).set(host=host, port=port)
        dsn = url.render_as_string(hide_password=False).replace(
            "postgresql+psycopg2://", "postgresql://", 1
        )
        load = Load()
        products = shop_load.catalogue(load, h.rng)
        worker = h.workers(
            "t6",
            env={**BACKOFF, "SHOPJOBS_DATABASE_URL": url.render_as_string(hide_password=False)},
        )
        shop_load.orders(load, h.rng, orders, products)
        guarded = _Probe(dsn, **TIMEOUTS, options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}")
        control = _Probe(dsn, connect_timeout=5)  # what a thread without the timeouts does
        guarded.start()
        control.start()
        at_progress(load, 0.3)
        cut_at = datetime.now(UTC)
        partition.cut()
        guarded.go.set()
        control.go.set()
        _pause.wait(blackhole_s)
        control_still_blocked = control.is_alive()
        partition.heal()
        healed = time.monotonic()
        evidence: dict[str, Any] = {
            "blackhole_s": blackhole_s,
            "probe_failed_after_s": guarded.failed_after,
            "bound_s": STATEMENT_TIMEOUT_MS / 1000 + 5,
            "control_probe_blocked_whole_partition": control_still_blocked,
        }
        outcome = h.finish(
            "T6",
            f"database partition {blackhole_s:.0f}s",
            load,
            partition.cuts,
            evidence,
            healed,
            worker,
        )
        outcome.evidence["longest_job_s"] = _longest_job_s(cut_at)
        outcome.evidence["worker_db_errors"] = sum(
            worker.log().count(s) for s in ("OperationalError", "timed out", "timeout expired")
        )
        return outcome
    finally:
        proxy.stop()
        partition.close()
