"""Housekeeping of the job system itself: ledger pruning by age and state, in bounded batches."""

from __future__ import annotations

import datetime as dt
from typing import Any

from jobcore.db import session_scope
from jobcore.ledger.states import State
from jobcore.models import FINAL_STATES
from shop.ops.batched import BatchStats, delete_in_batches
from shop.ops.runs import record_run, utcnow

SUCCEEDED_STATES = (State.SUCCEEDED, State.SKIPPED, State.CANCELLED)
FAILED_STATES = (State.FAILED, State.DEAD)


def prune_job_ledger(days: int, batch: int = 5000, states: tuple[str, ...] = FINAL_STATES) -> int:
    """Delete ledger rows in ``states`` (final ones only) older than ``days``; returns how many."""
    return _prune(days, batch, states).removed


def prune_job_ledger_by_policy(succeeded_days: int, failed_days: int, batch: int) -> dict[str, Any]:
    """Succeeded jobs go sooner than failed ones, which an operator may still need to read."""
    started = utcnow()
    done = _prune(succeeded_days, batch, SUCCEEDED_STATES)
    failed = _prune(failed_days, batch, FAILED_STATES)
    stats = {
        "succeeded_days": succeeded_days, "failed_days": failed_days, "batch_size": batch,
        "removed": done.removed + failed.removed, "batches": done.batches + failed.batches,
        "largest_batch": max(done.largest_batch, failed.largest_batch),
        "by": dict(sorted((done.by + failed.by).items())),
    }
    with session_scope() as s:
        record_run(s, "cleanup.job_ledger", started, stats)
    return stats


def _prune(days: int, batch: int, states: tuple[str, ...]) -> BatchStats:
    unknown = set(states) - set(FINAL_STATES)
    if unknown:
        raise ValueError(f"only finished jobs are pruned; not {sorted(unknown)}")
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    return delete_in_batches(
        "job_ledger", "state = ANY(:states) AND state_changed_at < :cutoff",
        {"states": list(states), "cutoff": cutoff}, batch=batch, key="message_id", group="state",
    )
