"""T15: long jobs and long delays on a broker whose ``consumer_timeout`` is 15 s.

RabbitMQ closes a channel whose delivery stays unacked past ``consumer_timeout`` (406
PRECONDITION_FAILED, checked on the channel's tick, once a minute) and redelivers what it held:
a job still running then runs twice at once, and a delay held on Dramatiq's ``.DQ`` path closes
its consumer. The run lowers the private node's timeout (channels read it when they open), runs
orders under a group told the timeout (``SHOPJOBS_CONSUMER_TIMEOUT_S``: every time limit 5 s
below it, delays past ``SHOPJOBS_DELAY_IN_DB_AFTER_S`` wait in PostgreSQL), with jobs delayed
past the timeout, a job that ends close to its time limit and one that hangs past it. A raw
consumer holding a delivery unacked shows the low timeout was in force: its channel closes.
"""

from __future__ import annotations

import itertools
import os
import re
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlparse

from sqlalchemy import func, select

from devtools import faults
from devtools.chaos import load as shop_load
from devtools.chaos.harness import Harness, Outcome, when
from devtools.chaos.load import Load
from devtools.held_delivery import HeldDelivery
from devtools.processes import Worker
from jobcore.db import session_scope
from jobcore.models import LedgerEntry, OutboxMessage
from jobcore.settings import CONSUMER_TIMEOUT_MARGIN_S

TIMEOUT_S = 15
CONTROL_QUEUE = "chaos.consumer-timeout-control"
# "Channel error on connection <0.1.2> (127.0.0.1:46864 -> 127.0.0.1:5672, vhost: 'v', ..."
_CHANNEL_ERROR = re.compile(
    r"Channel error on connection \S+ \([\d.]+:(\d+) -> [^,]+, vhost: '([^']*)'"
)
_CONSUMER_RESTART = "Consumer encountered a connection error"
_pause = threading.Event()


def group_env(timeout_s: int = TIMEOUT_S) -> dict[str, str]:
    """What a group on a broker with this timeout is told: the timeout, a delay threshold and
    every time limit the margin below it, and limit waits that fit those time limits."""
    limit_ms = (timeout_s - CONSUMER_TIMEOUT_MARGIN_S) * 1000
    return {
        "SHOPJOBS_CONSUMER_TIMEOUT_S": str(timeout_s),
        "SHOPJOBS_DELAY_IN_DB_AFTER_S": "5",
        "SHOPJOBS_CHAOS_TIME_LIMIT_MS": str(limit_ms),
        "SHOPJOBS_LIMIT_WAIT_MS": str(limit_ms // 2),
        "SHOPJOBS_MIN_BACKOFF_MS": "1000",
        "SHOPJOBS_MAX_BACKOFF_MS": "8000",
    }


def closed_for_unacked(log_path: str, offset: int, vhost: str) -> list[int]:
    """Client ports of ``vhost``'s channels the node closed with precondition_failed since
    ``offset`` of its log."""
    with open(log_path, errors="replace") as fh:
        fh.seek(offset)
        lines = fh.read().splitlines()
    ports = []
    for line, following in zip(lines, lines[1:] + [""], strict=True):
        found = _CHANNEL_ERROR.search(line)
        if found and found[2] == vhost and "precondition_failed" in line + following:
            ports.append(int(found[1]))
    return ports


def _vhost() -> str:
    return unquote(urlparse(os.environ["SHOPJOBS_AMQP_URL"]).path.lstrip("/")) or "/"


def refused_start(h: Harness, timeout_s: int = TIMEOUT_S) -> dict[str, Any]:
    """A group told the low timeout whose actors keep their own limits: it must not start."""
    env = {
        "SHOPJOBS_CONSUMER_TIMEOUT_S": str(timeout_s),
        "SHOPJOBS_DELAY_IN_DB_AFTER_S": "5",
        "SHOPJOBS_METRICS_PORT": "0",
    }
    worker = Worker(
        ("actors", "devtools.chaos.actors"),
        processes=1,
        threads=1,
        env=env,
        log_path=os.path.join(h.log_dir, "t15-refused-workers.log"),
    )
    try:
        when(lambda: not worker.alive(), 90, "the group told a 15 s consumer_timeout to refuse")
        refusal = next(
            (line for line in worker.log().splitlines() if "refusing to start" in line), ""
        )
        return {"exit_code": worker.proc.returncode, "refusal": refusal[refusal.find("refusing") :]}
    finally:
        worker.stop()


def _held_delays(actor: str) -> int:
    """``actor``'s sends waiting in PostgreSQL for their due time (a short delay's row carries
    ``delay_ms`` and is due at once: the relay hands it to Dramatiq's ``.DQ``)."""
    with session_scope() as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(
                    OutboxMessage.delay_ms.is_(None),
                    OutboxMessage.due_at > func.now(),
                    OutboxMessage.body.contains(actor.encode()),
                )
            )
            or 0
        )


def _due_rows() -> list[Any]:
    with session_scope() as s:
        return list(
            s.execute(
                select(
                    LedgerEntry.message_id,
                    LedgerEntry.state,
                    LedgerEntry.attempts,
                    LedgerEntry.redeliveries,
                    func.extract("epoch", LedgerEntry.started_at - LedgerEntry.eta),
                ).where(LedgerEntry.actor == "chaos.due")
            ).all()
        )


def _peak(count: Callable[[], int], target: int, seconds: float) -> int:
    """The highest ``count()`` seen until it reaches ``target`` or ``seconds`` pass."""
    peak, deadline = 0, time.monotonic() + seconds
    while peak < target and time.monotonic() < deadline:
        peak = max(peak, count())
        _pause.wait(0.1)
    return peak


def _all_succeeded(rows: list[Any], expected: int) -> list[Any]:
    """``rows`` once all ``expected`` succeeded, else empty (polled)."""
    if len(rows) == expected and all(row[1] == "succeeded" for row in rows):
        return rows
    return []


def _lines(path: str) -> list[list[str]]:
    try:
        with open(path) as fh:
            return [line.split() for line in fh.read().splitlines()]
    except FileNotFoundError:
        return []


def _overlapping(runs: list[list[str]]) -> int:
    """Pairs of runs whose (start, end) intervals overlap."""
    spans = sorted((float(r[1]), float(r[2])) for r in runs)
    return sum(1 for a, b in itertools.pairwise(spans) if b[0] < a[1])


def long_jobs_and_delays(
    h: Harness, orders: int, delayed: int = 60, timeout_s: int = TIMEOUT_S
) -> Outcome:
    """T15: ``orders`` orders, ``delayed`` jobs due 16-60 s ahead (half sent by this process,
    half from a job in a worker), a job ending near its time limit and one cut by it, on a
    broker whose consumer_timeout is ``timeout_s``."""
    from devtools.chaos.actors import LONG_JOB_LIMIT_MS, due, long_job, send_later

    log_path = faults.broker_log_path()
    offset = os.path.getsize(log_path)
    vhost = _vhost()
    effects = os.path.join(h.log_dir, "t15-due.effects")
    near_runs = os.path.join(h.log_dir, "t15-near-limit.runs")
    hang_runs = os.path.join(h.log_dir, "t15-hang.runs")
    limit_s = float(timeout_s - CONSUMER_TIMEOUT_MARGIN_S)
    refused = refused_start(h, timeout_s)
    with faults.consumer_timeout(timeout_s * 1000):
        load = Load()
        products = shop_load.catalogue(load, h.rng)
        worker = h.workers("t15", env=group_env(timeout_s))
        control = HeldDelivery(os.environ["SHOPJOBS_AMQP_URL"], CONTROL_QUEUE).hold_one()
        try:
            shop_load.orders(load, h.rng, orders // 2, products)
            near = long_job.send(near_runs, min(LONG_JOB_LIMIT_MS / 1000, limit_s) - 1.5)
            hang = long_job.send(hang_runs, 90.0)  # without TimeLimit: past the broker's tick
            half = delayed // 2
            # this process holds delays over its own threshold (30 s) in PostgreSQL
            from_here = [
                due.send_with_options(args=(effects, n), delay=35_000 + n * 25_000 // half)
                for n in range(half)
            ]
            # a worker holds delays over 5 s there: 16-60 s, most of them below 30 s
            later_delays = [16_000 + n * 44_000 // (delayed - half) for n in range(delayed - half)]
            sender = send_later.send(effects, half, later_delays)
            shop_load.orders(load, h.rng, orders - orders // 2, products)
            held = _peak(lambda: _held_delays("chaos.due"), delayed, 30)
            rows = when(
                lambda: _all_succeeded(_due_rows(), delayed),
                120,
                "every delayed job ran",
            )
            when(control.closed, 90, "the control's channel closed (held past the timeout)")
            when(
                lambda: closed_for_unacked(log_path, offset, vhost),
                15,
                "the node logged the control's close",
            )
            last = time.monotonic()
            effect_keys = [int(line[0]) for line in _lines(effects)]
            late = sorted(float(x[4]) for x in rows if x[4] is not None)
            load.message_ids += [m.message_id for m in from_here] + [x[0] for x in rows]
            load.message_ids += [near.message_id, hang.message_id, sender.message_id]
            evidence: dict[str, Any] = {
                "consumer_timeout_s": timeout_s,
                "time_limit_s": limit_s,
                "refused_start": refused,
                "limits_checked": "time limits end before consumer_timeout" in worker.log(),
                "delayed_jobs": len(rows),
                "held_in_outbox": held,
                "delayed_runs": len(effect_keys),
                "delayed_keys_once": sorted(effect_keys) == list(range(delayed)),
                "delayed_attempts": sorted({x[2] for x in rows}),
                "delayed_redeliveries": sum(x[3] for x in rows),
                "lateness_measured": len(late),
                "lateness_s": {
                    "min": round(late[0], 3),
                    "p50": round(statistics.median(late), 3),
                    "max": round(late[-1], 3),
                },
                "control": {
                    "closed_with": control.closed_with,
                    "after_s": round((control.closed_at or 0) - (control.held_at or 0), 1),
                },
            }
        finally:
            control.close()
        # the drain waits for every job, a long one that ran on included, and stops the group:
        # what the broker closed and what ran twice is read once nothing runs any more
        outcome = h.finish(
            "T15",
            f"consumer_timeout {timeout_s}s: long jobs, {delayed} delays past it",
            load,
            delayed + 2,
            evidence,
            last,
            worker,
        )
    closed = closed_for_unacked(log_path, offset, vhost)
    outcome.evidence.update(
        {
            "near_limit": _runs(near.message_id, near_runs),
            "hang": _runs(hang.message_id, hang_runs),
            "channels_closed_406": closed,
            "worker_channels_closed_406": [p for p in closed if p != control.port],
            "consumer_restarts": worker.log().count(_CONSUMER_RESTART),
        }
    )
    return outcome


def _runs(message_id: str, path: str) -> dict[str, Any]:
    """A long job's ledger state, its runs' lengths and how many overlapped another."""
    ran = _lines(path)
    with session_scope() as s:
        state = s.scalar(select(LedgerEntry.state).where(LedgerEntry.message_id == message_id))
    return {
        "state": state,
        "runs": len(ran),
        "ran_s": [round(float(r[2]) - float(r[1]), 1) for r in ran],
        "overlapping": _overlapping(ran),
    }
