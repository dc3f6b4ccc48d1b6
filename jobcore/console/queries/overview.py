"""The overview: what is waiting and running now, what finished in a window, and time series.

Every query is bounded by an index: live states through (state, state_changed_at), recent
outcomes through the state_changed_at index, so the page costs the same on a large ledger.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

LIVE_STATES = ("scheduled", "enqueued", "running", "retrying")
WINDOWS = {"1h": 3600, "6h": 6 * 3600, "24h": 86400}


def live_counts(session: Session) -> dict[str, dict[str, int]]:
    """queue -> {ready, delayed, running, retrying}: the jobs not yet finished."""
    rows = session.execute(
        text("""
        SELECT queue,
               CASE WHEN state IN ('scheduled', 'enqueued') AND eta > now() THEN 'delayed'
                    WHEN state IN ('scheduled', 'enqueued') THEN 'ready' ELSE state END AS kind,
               count(*)
        FROM job_ledger WHERE state IN ('scheduled', 'enqueued', 'running', 'retrying')
        GROUP BY 1, 2""")
    ).all()
    out: dict[str, dict[str, int]] = {}
    for queue, kind, count in rows:
        out.setdefault(queue, {})[kind] = count
    return out


def recent_outcomes(session: Session, seconds: int) -> dict[str, dict[str, int]]:
    """queue -> state -> jobs whose state changed in the last ``seconds``."""
    rows = session.execute(
        text("""
        SELECT queue, state, count(*) FROM job_ledger
        WHERE state_changed_at >= now() - make_interval(secs => :s)
        GROUP BY 1, 2"""),
        {"s": seconds},
    ).all()
    out: dict[str, dict[str, int]] = {}
    for queue, state, count in rows:
        out.setdefault(queue, {})[state] = count
    return out


def oldest_waiting(session: Session) -> dict[str, float]:
    """queue -> seconds the oldest ready job has waited."""
    rows = session.execute(
        text("""
        SELECT queue, EXTRACT(EPOCH FROM now() - min(coalesce(eta, enqueued_at)))
        FROM job_ledger
        WHERE state IN ('scheduled', 'enqueued') AND (eta IS NULL OR eta <= now())
          AND enqueued_at IS NOT NULL
        GROUP BY queue""")
    ).all()
    return {queue: float(age) for queue, age in rows}


def open_dead_letters(session: Session) -> dict[str, int]:
    rows = session.execute(
        text("SELECT queue, count(*) FROM dead_letters WHERE replayed_at IS NULL GROUP BY queue")
    ).all()
    return {q: int(c) for q, c in rows}


def series(session: Session, seconds: int) -> dict[str, list[Any]]:
    """Per-bucket finished jobs, failures and p95 wait and run times, for the charts (uPlot's
    column format: x in epoch seconds, then one list per series)."""
    bucket = 60 if seconds <= 6 * 3600 else 300
    rows = session.execute(
        text("""
        SELECT floor(EXTRACT(EPOCH FROM state_changed_at) / :b) * :b AS at,
               count(*) FILTER (WHERE state = 'succeeded') AS done,
               count(*) FILTER (WHERE state IN ('failed', 'dead')) AS failed,
               percentile_cont(0.95) WITHIN GROUP (
                   ORDER BY EXTRACT(EPOCH FROM started_at - enqueued_at)) AS wait_p95,
               percentile_cont(0.95) WITHIN GROUP (
                   ORDER BY EXTRACT(EPOCH FROM finished_at - started_at)) AS run_p95
        FROM job_ledger
        WHERE state_changed_at >= now() - make_interval(secs => :s)
          AND state IN ('succeeded', 'failed', 'dead')
        GROUP BY 1 ORDER BY 1"""),
        {"b": bucket, "s": seconds},
    ).all()
    now = session.scalar(text("SELECT EXTRACT(EPOCH FROM now())"))
    start = (int(now) - seconds) // bucket * bucket
    found = {int(r.at): r for r in rows}
    cols: dict[str, list[Any]] = {"t": [], "done": [], "failed": [], "wait_p95": [], "run_p95": []}
    for t in range(start, int(now) + 1, bucket):
        r = found.get(t)
        cols["t"].append(t)
        cols["done"].append(int(r.done) if r else 0)
        cols["failed"].append(int(r.failed) if r else 0)
        cols["wait_p95"].append(
            round(float(r.wait_p95), 3) if r and r.wait_p95 is not None else None
        )
        cols["run_p95"].append(round(float(r.run_p95), 3) if r and r.run_p95 is not None else None)
    cols["bucket_s"] = [bucket]
    return cols


def ledger_health(session: Session, retention_days: dict[str, int]) -> dict[str, Any]:
    """Size of the ledger, rows per state, and what the next prune would remove."""
    size = session.execute(
        text("""
        SELECT pg_total_relation_size('job_ledger'), pg_relation_size('job_ledger'),
               pg_indexes_size('job_ledger'),
               (SELECT reltuples::bigint FROM pg_class WHERE oid = 'job_ledger'::regclass)""")
    ).one()
    by_state: dict[str, int] = dict(
        session.execute(
            text("SELECT state, count(*) FROM job_ledger GROUP BY state ORDER BY 2 DESC")
        ).all()
    )
    oldest = session.scalar(text("SELECT min(state_changed_at) FROM job_ledger"))
    prune = []
    for state, days in sorted(retention_days.items()):
        count = session.scalar(
            text(
                "SELECT count(*) FROM job_ledger WHERE state = :state "
                "AND state_changed_at < now() - make_interval(days => :days)"
            ),
            {"state": state, "days": days},
        )
        prune.append({"state": state, "keep_days": days, "removes": int(count or 0)})
    indexes = session.execute(
        text("""
        SELECT indexrelname, pg_relation_size(indexrelid), idx_scan FROM pg_stat_user_indexes
        WHERE relname = 'job_ledger' ORDER BY 2 DESC""")
    ).all()
    return {
        "total_bytes": size[0],
        "table_bytes": size[1],
        "index_bytes": size[2],
        "estimated_rows": max(0, int(size[3] or 0)),
        "by_state": {k: int(v) for k, v in by_state.items()},
        "oldest": oldest,
        "prune": prune,
        "indexes": [{"name": n, "bytes": b, "scans": s} for n, b, s in indexes],
    }


def window_seconds(name: str | None) -> tuple[str, int]:
    name = name or "1h"
    return name, WINDOWS[name]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
