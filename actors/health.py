"""The health check actor, fired every minute by the scheduler."""

from __future__ import annotations

from typing import Any

import dramatiq

import broker as shop_broker
from shop.queues import Queue
from shop.ops import health


@dramatiq.actor(actor_name="health.check", queue_name=Queue.MAINTENANCE.value, max_retries=0,
                time_limit=60_000)
def health_check() -> dict[str, Any]:
    """Probe every component, store and export the results, alert on long outages.

    No retries: the next minute's check is the retry, and a late result is a misleading one.
    """
    return health.health_check(shop_broker.settings)
