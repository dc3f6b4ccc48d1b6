"""The health check actor, fired every minute by the scheduler."""

from __future__ import annotations

from typing import Any

from broker import routes, settings
from shop.ops import health


@routes.actor("health.check")
def health_check() -> dict[str, Any]:
    """Probe every component, store and export the results, alert on long outages.

    No retries: the next minute's check is the retry, and a late result is a misleading one.
    """
    return health.health_check(settings)
