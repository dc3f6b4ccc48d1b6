"""The supervisor's own metrics, written to its group's multiprocess directory.

The group's metrics fork merges this directory, so the one /metrics endpoint of the group
shows restarts and a crash loop beside the jobs. Made unregistered: in multiprocess mode the
value lives in the files, and a second supervisor in one process (tests) must not collide.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge


class SupervisorMetrics:
    """Created after the directory is enabled (``multiproc.enable``), never at import."""

    def __init__(self) -> None:
        self.restarts = Counter(
            "shopjobs_worker_restarts",
            "Processes of the worker group that died and were replaced",
            ["kind", "cause"],
            registry=None,
        )
        self.backoff = Gauge(
            "shopjobs_worker_restart_backoff_seconds",
            "Longest wait of a slot before its dead process is started again",
            registry=None,
            multiprocess_mode="max",
        )
        self.crash_looping = Gauge(
            "shopjobs_worker_group_crash_looping",
            "1 when every worker process kept dying and the supervisor gave up",
            registry=None,
            multiprocess_mode="max",
        )
