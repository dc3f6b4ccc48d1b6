"""Housekeeping actors: the outbox relay, ledger pruning, re-driving stranded orders and the
shop's cleanups.

Each cleanup deletes in bounded batches and returns (and stores) its statistics; ages and
batch sizes default to the settings, and a message may override the age.
"""

from __future__ import annotations

from typing import Any

from broker import routes, settings
from jobcore import outbox
from jobcore.validate import positive_id
from shop.ops import cleanup, maintenance
from shop.orders import redrive

# orders re-driven per run at most: a queue deleted under a big backlog is worked off over runs
REDRIVE_LIMIT = 500


def _age(value: int | None, default: int, name: str) -> int:
    return default if value is None else positive_id(value, name)


@routes.actor("maintenance.relay_outbox")
def relay_outbox() -> None:
    """Publish outbox rows that their after-commit publish missed."""
    outbox.relay_pending(settings.outbox_relay_after_s)


@routes.actor("maintenance.redrive_stranded_orders")
def redrive_stranded_orders() -> dict[str, Any]:
    """Send the next step of orders whose jobs were lost (``SHOPJOBS_ORDERS_REDRIVE_AFTER_S``)."""
    done = redrive.redrive_stranded(
        settings.orders_redrive_after_s,
        settings.amqp_url,
        limit=REDRIVE_LIMIT,
        fifo=not settings.queue_max_priority,
    )
    return {
        "redriven": {str(r.order_id): r.message_id for r in done if r.message_id},
        "skipped": {str(r.order_id): r.skipped for r in done if r.skipped},
        "left_lost": {str(r.order_id): r.left for r in done if r.left},
    }


@routes.actor("maintenance.prune_job_ledger")
def prune_job_ledger(days: int = 30) -> None:
    """Delete finished ledger rows older than ``days`` days, in batches."""
    maintenance.prune_job_ledger(positive_id(days, "days"))


@routes.actor("maintenance.prune_job_ledger_by_policy")
def prune_job_ledger_by_policy() -> dict[str, Any]:
    """Delete succeeded jobs after ``LEDGER_KEEP_DAYS_SUCCEEDED``, failed ones after ``..._FAILED``."""
    s = settings
    return maintenance.prune_job_ledger_by_policy(
        s.ledger_keep_days_succeeded, s.ledger_keep_days_failed, s.cleanup_batch_size
    )


@routes.actor("maintenance.cleanup_expired_carts")
def cleanup_expired_carts(days_old: int | None = None) -> dict[str, Any]:
    s = settings
    return cleanup.expired_carts(
        _age(days_old, s.cart_max_age_days, "days_old"), s.cleanup_batch_size
    )


@routes.actor("maintenance.cleanup_expired_tokens")
def cleanup_expired_tokens() -> dict[str, Any]:
    s = settings
    return cleanup.expired_tokens(s.token_used_keep_hours, s.cleanup_batch_size)


@routes.actor("maintenance.cleanup_expired_sessions")
def cleanup_expired_sessions() -> dict[str, Any]:
    return cleanup.expired_sessions(settings.cleanup_batch_size)


@routes.actor("maintenance.cleanup_abandoned_sessions")
def cleanup_abandoned_sessions(idle_days: int | None = None) -> dict[str, Any]:
    s = settings
    return cleanup.abandoned_sessions(
        _age(idle_days, s.session_abandoned_days, "idle_days"), s.cleanup_batch_size
    )


@routes.actor("maintenance.cleanup_old_audit_logs")
def cleanup_old_audit_logs(days: int | None = None) -> dict[str, Any]:
    s = settings
    return cleanup.old_audit_logs(_age(days, s.audit_log_keep_days, "days"), s.cleanup_batch_size)
