"""The scheduler daemon: several may run, the advisory-lock holder fires, each fire once.

It only sends messages; workers do the work. Firing is driven by our own loop over the
APScheduler triggers (``get_next_fire_time``), not by an APScheduler scheduler, because:

- a fire's message id must come from the trigger's scheduled time, and "already handled" from
  PostgreSQL (``schedule_state.checked_until``, ``schedule_fires``), which every instance
  shares; APScheduler 3 keeps both in its own job store and passes jobs only the wall time;
- leadership gates every step: a scheduler that loses the lock must stop firing at once,
  where a BackgroundScheduler's thread would keep running jobs until told to pause;
- operators' pauses and overrides live in the database and are re-read every tick, with no
  job-store synchronisation between instances;
- a step is a plain function of "now", so tests drive it in-process under time-machine.

Each loop: re-check (or try to take) the lock, fire what is due, sleep until the next fire or
the next tick, whichever is first. SIGTERM finishes the step, releases the lock and exits 0.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from collections.abc import Collection, Sequence

import dramatiq.errors
from sqlalchemy.exc import SQLAlchemyError

from jobcore.metrics import scheduling as metrics
from shop.scheduling import entries as schedule_entries
from shop.scheduling import firing
from shop.scheduling.entries import Entry
from shop.scheduling.leader import Leadership

logger = logging.getLogger(__name__)

ON_TIME_TICKS = 2  # a fire handled within two ticks of its time is on time (covers a takeover)
MIN_TICK_S, MAX_TICK_S = 0.05, 60.0


class Scheduler:
    """The loop of one scheduler process.

    Parameters:
      entries: the schedule.
      leadership: the advisory-lock election this process takes part in.
      tick_s: how often the lock is re-checked (and non-leaders retry); fires happen on time
        regardless, since the loop wakes at the next fire time when that comes first.
      parent_pid: exit when this process is no longer the parent (tests, the main job).
    """

    def __init__(
        self,
        entries: Sequence[Entry],
        leadership: Leadership,
        *,
        tick_s: float,
        parent_pid: int | None = None,
    ) -> None:
        self.entries = tuple(entries)
        self.leadership = leadership
        self.tick_s = tick_s
        self.on_time_s = ON_TIME_TICKS * tick_s
        self.relay_after_s = max(5.0, 5 * tick_s)
        self.parent_pid = parent_pid
        self._last_relay: dt.datetime | None = None
        self._was_leading = False

    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                wake = self.step()
                delay = (wake - firing.utcnow()).total_seconds()
                stop.wait(min(self.tick_s, max(0.0, delay)))
                if self.parent_pid is not None and os.getppid() != self.parent_pid:
                    logger.warning("parent process %d is gone; scheduler stopping", self.parent_pid)
                    break
        finally:
            self.leadership.release()
            metrics.LEADER.set(0)
        logger.info("scheduler stopped")

    def step(self) -> dt.datetime:
        """One round: leadership check, then (as leader) every due fire; returns when to wake."""
        leading = self.leadership.ensure()
        metrics.LEADER.set(1 if leading else 0)
        if leading != self._was_leading:
            self._was_leading = leading
            metrics.LEADERSHIP_CHANGES.inc()
        if not leading:
            return firing.utcnow() + dt.timedelta(seconds=self.tick_s)
        now = firing.utcnow()
        wake = now + dt.timedelta(seconds=self.tick_s)
        try:
            upcoming = firing.fire_pending(self.entries, on_time_s=self.on_time_s, now=now)
            if (
                self._last_relay is None
                or (now - self._last_relay).total_seconds() >= self.relay_after_s
            ):
                self._last_relay = now
                firing.relay_stragglers(self.relay_after_s)
        except (SQLAlchemyError, dramatiq.errors.ConnectionError):
            metrics.STEP_FAILURES.inc()
            logger.exception("scheduler step failed; retrying next tick")
            return wake
        return min(wake, upcoming) if upcoming is not None else wake


def load_schedule(module_name: str, declared: Collection[str]) -> tuple[Entry, ...]:
    """The schedule's entries; every entry must name one of the ``declared`` actors.

    The entry point imports the broker and the actor modules (``entries.actor_modules``) and
    passes the names it declared: this layer never imports them itself.
    """
    entries = schedule_entries.load(module_name)
    unknown = [f"{e.name} -> {e.actor}" for e in entries if e.actor not in declared]
    if unknown:
        raise LookupError(f"entries name undeclared actors: {', '.join(unknown)}")
    return entries
