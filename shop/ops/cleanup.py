"""The shop's cleanups: old carts, expired tokens and sessions, old audit rows.

Every cleanup deletes in bounded batches (``shop.ops.batched``), removes only rows past
their age, returns its statistics and stores them as an ``ops_runs`` row.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import text

from jobcore.db import session_scope
from jobcore.errors import InvalidInput
from shop.ops.batched import BatchStats, delete_in_batches
from shop.ops.runs import record_run, utcnow

logger = logging.getLogger(__name__)

AUDIT_KEEP_AT_LEAST_DAYS = 30  # as prune_audit_log (migration 0016) enforces
_EMPTY_CART = "NOT EXISTS (SELECT 1 FROM cart_items i WHERE i.cart_id = carts.id)"


def _finish(task: str, started: dt.datetime, stats: dict[str, Any]) -> dict[str, Any]:
    with session_scope() as s:
        record_run(s, task, started, stats)
    logger.info("%s removed %d rows in %d batches", task, stats["removed"], stats["batches"])
    return stats


def expired_carts(days_old: int, batch: int) -> dict[str, Any]:
    """Carts not updated for ``days_old`` days: the empty ones first (cheap, no items), then the rest."""
    started = utcnow()
    params = {"cutoff": started - dt.timedelta(days=days_old)}
    empty = delete_in_batches(
        "carts", f"updated_at < :cutoff AND {_EMPTY_CART}", params, batch=batch
    )
    with_items = delete_in_batches("carts", "updated_at < :cutoff", params, batch=batch)
    stats = {
        "days_old": days_old,
        "batch_size": batch,
        "removed": empty.removed + with_items.removed,
        "batches": empty.batches + with_items.batches,
        "largest_batch": max(empty.largest_batch, with_items.largest_batch),
        "empty_carts": empty.removed,
        "carts_with_items": with_items.removed,
    }
    return _finish("cleanup.expired_carts", started, stats)


def expired_tokens(used_keep_hours: int, batch: int) -> dict[str, Any]:
    """Password-reset, e-mail-verification and OTP tokens past expiry, or used long enough ago."""
    started = utcnow()
    result = delete_in_batches(
        "tokens",
        "expires_at < :now OR (used_at IS NOT NULL AND used_at < :used_cutoff)",
        {"now": started, "used_cutoff": started - dt.timedelta(hours=used_keep_hours)},
        batch=batch,
        group="kind",
    )
    return _finish("cleanup.expired_tokens", started, {"batch_size": batch, **result.as_dict()})


def expired_sessions(batch: int) -> dict[str, Any]:
    """Sessions whose expiry has passed."""
    started = utcnow()
    result = delete_in_batches("user_sessions", "expires_at < :now", {"now": started}, batch=batch)
    return _finish("cleanup.expired_sessions", started, {"batch_size": batch, **result.as_dict()})


def abandoned_sessions(idle_days: int, batch: int) -> dict[str, Any]:
    """Sessions nobody used for ``idle_days`` days although not yet expired (counted by who owned them)."""
    started = utcnow()
    result = delete_in_batches(
        "user_sessions",
        "last_activity_at < :cutoff",
        {"cutoff": started - dt.timedelta(days=idle_days)},
        batch=batch,
        group="CASE WHEN user_id IS NULL THEN 'anonymous' ELSE 'customer' END",
    )
    return _finish(
        "cleanup.abandoned_sessions",
        started,
        {"idle_days": idle_days, "batch_size": batch, **result.as_dict()},
    )


def old_audit_logs(days: int, batch: int) -> dict[str, Any]:
    """Audit rows older than ``days`` days, through the owner's ``prune_audit_log`` (migration
    0016): the application role may not DELETE from the audit log, and the function removes
    nothing younger than ``AUDIT_KEEP_AT_LEAST_DAYS``."""
    if days < AUDIT_KEEP_AT_LEAST_DAYS:
        raise InvalidInput(
            f"audit rows are kept at least {AUDIT_KEEP_AT_LEAST_DAYS} days, not {days}"
        )
    started = utcnow()
    result = BatchStats()
    cutoff = started - dt.timedelta(days=days)
    while True:
        with session_scope() as s:
            count = int(
                s.execute(
                    text("SELECT prune_audit_log(:cutoff, :batch)"),
                    {"cutoff": cutoff, "batch": batch},
                ).scalar_one()
            )
        if count:
            result.removed += count
            result.batches += 1
            result.largest_batch = max(result.largest_batch, count)
        if count < batch:
            break
    return _finish(
        "cleanup.old_audit_logs", started, {"days": days, "batch_size": batch, **result.as_dict()}
    )
