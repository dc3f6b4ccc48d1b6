"""When a dead process is started again, and when the whole group counts as crash-looping.

A process that dies once is replaced at once (gunicorn's arbiter does the same). One that dies
again before it has run ``stable_s`` waits, twice as long each time up to ``backoff_max_s``, so
a worker that cannot boot (a broken deploy, the broker unreachable at start) does not spin. When
every worker slot has died ``crash_loop_after`` times in a row the group is crash-looping: the
supervisor reports it and exits instead of retrying forever, so the orchestrator (systemd,
compose, Kubernetes) and the alerting see it.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class RestartPolicy:
    """Parameters:
    stable_s: a process that ran this long before it died starts its count afresh.
    backoff_min_s: the wait before the second restart in a row; doubles after each.
    backoff_max_s: the longest wait between restarts of one slot.
    crash_loop_after: consecutive quick deaths of every worker slot that end the group.
    """

    stable_s: float = 30.0
    backoff_min_s: float = 1.0
    backoff_max_s: float = 30.0
    crash_loop_after: int = 6

    def failures_after_death(self, failures: int, lived_s: float) -> int:
        """The slot's count of consecutive quick deaths, this one included."""
        return failures + 1 if lived_s < self.stable_s else 1

    def delay(self, failures: int) -> float:
        """Seconds to wait before starting a slot that has died ``failures`` times in a row."""
        if failures <= 1:
            return 0.0
        return float(min(self.backoff_min_s * 2 ** (failures - 2), self.backoff_max_s))

    def crash_looping(self, failures: list[int]) -> bool:
        """True when every worker slot has died ``crash_loop_after`` times in a row."""
        return bool(failures) and min(failures) >= self.crash_loop_after
