"""The scheduler daemon's metrics, served on its own endpoint (``SHOPJOBS_SCHEDULER_METRICS_PORT``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

FIRES = Counter(
    "shopjobs_scheduler_fires",
    "Schedule fires sent, by reason (on_time, catch_up, manual).",
    ["schedule", "reason"],
)
MISFIRES = Counter(
    "shopjobs_scheduler_misfires", "Fires missed (handled too late) and not sent.", ["schedule"]
)
LEADER = Gauge(
    "shopjobs_scheduler_leader",
    "1 while this scheduler holds the leadership, else 0.",
    multiprocess_mode="liveall",
)
LEADERSHIP_CHANGES = Counter(
    "shopjobs_scheduler_leadership_changes", "Times this scheduler became or stopped being leader."
)
STEP_FAILURES = Counter(
    "shopjobs_scheduler_step_failures", "Scheduler steps that failed (database or broker down)."
)
