"""Housekeeping actors of the job system (cleanup jobs of the shop join in [08])."""

from __future__ import annotations

import dramatiq

import broker as shop_broker
from shop import outbox
from shop.errors import PermanentError
from shop.queues import Queue
from shop.services import maintenance
from shop.validate import positive_id


@dramatiq.actor(actor_name="maintenance.relay_outbox", queue_name=Queue.MAINTENANCE.value, max_retries=3)
def relay_outbox() -> None:
    """Publish outbox rows that their after-commit publish missed."""
    outbox.relay_pending(shop_broker.settings.outbox_relay_after_s)


@dramatiq.actor(
    actor_name="maintenance.prune_job_ledger",
    queue_name=Queue.MAINTENANCE.value,
    throws=(PermanentError,),
    max_retries=3,
)
def prune_job_ledger(days: int = 30) -> None:
    """Delete finished ledger rows older than ``days`` days, in batches."""
    maintenance.prune_job_ledger(positive_id(days, "days"))
