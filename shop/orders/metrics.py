"""The order domain's metrics (multi-process safe: counters are summed across processes)."""

from __future__ import annotations

from prometheus_client import Counter

REDRIVEN = Counter(
    "shopjobs_orders_redriven",
    "Orders stranded by lost jobs whose next step was sent again, by the step sent",
    ["step"],
)
