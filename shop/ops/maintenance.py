"""Housekeeping of the job system itself: ledger pruning by age and state, in bounded batches."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from sqlalchemy import text

from jobcore import groups, unique
from jobcore.db import session_scope
from jobcore.ledger.states import State
from jobcore.models import FINAL_STATES
from shop.ops.batched import BatchStats
from shop.ops.runs import record_run, utcnow

SUCCEEDED_STATES = (State.SUCCEEDED, State.SKIPPED, State.CANCELLED)
FAILED_STATES = (State.FAILED, State.DEAD)
PAUSE = 1.0  # rest as long as each batch took: half the database's time, at most, for a prune


def prune_job_ledger(days: int, batch: int = 5000, states: tuple[str, ...] = FINAL_STATES) -> int:
    """Delete ledger rows in ``states`` (final ones only) older than ``days``; returns how many."""
    return _prune(days, batch, states).removed


def prune_job_ledger_by_policy(succeeded_days: int, failed_days: int, batch: int) -> dict[str, Any]:
    """Succeeded jobs go sooner than failed ones, which an operator may still need to read."""
    started = utcnow()
    done = _prune(succeeded_days, batch, SUCCEEDED_STATES)
    failed = _prune(failed_days, batch, FAILED_STATES)
    workflow = prune_workflow(max(succeeded_days, failed_days), batch)
    stats = {
        "succeeded_days": succeeded_days,
        "failed_days": failed_days,
        "batch_size": batch,
        "removed": done.removed + failed.removed,
        "batches": done.batches + failed.batches,
        "largest_batch": max(done.largest_batch, failed.largest_batch),
        "by": dict(sorted((done.by + failed.by).items())),
        **workflow,
    }
    with session_scope() as s:
        record_run(s, "cleanup.job_ledger", started, stats)
    return stats


def prune_workflow(days: int, batch: int) -> dict[str, int]:
    """Groups settled over ``days`` ago (kept as long as their children's ledger rows) and
    unique keys whose window is over, in batches of one short transaction each."""
    removed = {"groups_removed": 0, "unique_keys_removed": 0}
    for name, prune in (
        ("groups_removed", lambda cur: groups.prune(cur, days, batch)),
        ("unique_keys_removed", lambda cur: unique.prune(cur, batch)),
    ):
        while True:
            with session_scope() as s:
                cursor = s.connection().connection.cursor()
                try:
                    n = prune(cursor)
                finally:
                    cursor.close()
            removed[name] += n
            if n < batch:
                break
    return removed


# One state at a time, oldest first, from where the last batch ended: each batch is a range of
# the (state, state_changed_at) index. Picking rows by message_id instead (as the generic
# delete_in_batches does) made PostgreSQL walk the primary key and filter, past every row
# already deleted: 9 s a batch at 2 M rows, quadratic in the rows to prune.
# The rows are deleted by their ctid (a TID scan: straight to their pages), not joined back
# through the primary key: one index descent per row less, so each batch holds the WAL and the
# disk for less time while the workers' ledger commits wait behind it.
_PRUNE_BATCH = text("""
WITH doomed AS (
    SELECT ctid FROM job_ledger
    WHERE state = :state AND state_changed_at >= :after AND state_changed_at < :cutoff
    ORDER BY state_changed_at LIMIT :batch FOR UPDATE SKIP LOCKED
)
DELETE FROM job_ledger WHERE ctid = ANY(ARRAY(SELECT ctid FROM doomed))
RETURNING state_changed_at
""")


def _prune(days: int, batch: int, states: tuple[str, ...], pause: float = PAUSE) -> BatchStats:
    """Delete in batches, resting ``pause`` x the batch's time after each: a large prune shares
    the database (CPU, WAL) with the workers' ledger writes instead of taking it whole."""
    unknown = set(states) - set(FINAL_STATES)
    if unknown:
        raise ValueError(f"only finished jobs are pruned; not {sorted(unknown)}")
    if batch < 1:
        raise ValueError("batch must be at least 1")
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    stats = BatchStats()
    for state in states:
        after = dt.datetime.min.replace(tzinfo=dt.UTC)
        while True:
            started = time.monotonic()
            with session_scope() as s:
                changed = list(
                    s.execute(
                        _PRUNE_BATCH,
                        {"state": str(state), "after": after, "cutoff": cutoff, "batch": batch},
                    ).scalars()
                )
            if len(changed) == batch and pause:
                time.sleep(pause * (time.monotonic() - started))
            if changed:
                after = max(changed)  # ties stay in range: the deleted ones are gone
                stats.removed += len(changed)
                stats.batches += 1
                stats.largest_batch = max(stats.largest_batch, len(changed))
                stats.by[str(state)] += len(changed)
            if len(changed) < batch:
                break
    return stats
