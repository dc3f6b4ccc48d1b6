"""Schedule math on APScheduler 3's triggers: DST-safe, identical in every scheduler process.

Every process must compute the *same* fire times, since a fire's message id is derived from
its time. Two adjustments make APScheduler 3.11's triggers fit that:

- ``IntervalTrigger`` without a ``start_date`` counts from the moment it is built, so two
  processes would disagree. Ours are anchored at ``EPOCH``: an every-30-s entry fires at :00
  and :30 in every process. Intervals run on absolute time, so DST changes nothing.
- ``CronTrigger(timezone=...)`` loses the ``fold`` of a wall-clock hour that the autumn
  change repeats, and returns earlier or the same times again (agronholm/apscheduler#1021,
  still in 3.11.3). ``WallClockCron`` uses the same ``CronTrigger`` field matching on naive
  wall-clock time and maps each wall time to an instant itself. A time in the autumn's repeated
  hour fires once, at its first occurrence. A time that the spring change skips fires once, at
  the end of the gap (02:30 becomes 03:30 CEST). Frequent jobs use intervals for that reason.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

UTC = dt.UTC
EPOCH = dt.datetime(2000, 1, 1, tzinfo=UTC)
STEP = dt.timedelta(
    milliseconds=1
)  # fires are at least 0.1 s apart; "strictly after t" = from t + 1 ms
MIN_EVERY_S, MAX_EVERY_S = 0.1, 366 * 86400.0
_REPEATED_HOUR_PROBES = 10_000  # cron matches inside one repeated hour, at most 3,600


class WallClockCron(BaseTrigger):
    """A crontab expression on a time zone's wall clock (5 fields, or 6 with seconds first).

    The day-of-week field takes names (``mon-fri``): APScheduler 3 numbers days from Monday,
    crontab from Sunday, and a silent off-by-one day is worse than an error.
    """

    def __init__(self, expr: str, timezone: ZoneInfo) -> None:
        fields = expr.split()
        if len(fields) not in (5, 6):
            raise ValueError(
                f"cron {expr!r}: expected 5 fields (or 6 with seconds first), got {len(fields)}"
            )
        if len(fields) == 5:
            fields = ["0", *fields]
        second, minute, hour, day, month, day_of_week = fields
        if any(c.isdigit() for c in day_of_week.split("/")[0]):
            raise ValueError(
                f"cron {expr!r}: name the days of the week (mon-fri, sun), not numbers"
            )
        self.expr = expr
        self.timezone = timezone
        self._wall = CronTrigger(
            second=second,
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=day_of_week,
            timezone=UTC,
        )

    def get_next_fire_time(
        self, previous_fire_time: dt.datetime | None, now: dt.datetime
    ) -> dt.datetime | None:
        # CronTrigger's contract: the first fire after the previous one, else the first from now
        start = now
        if previous_fire_time is not None:
            start = min(now, previous_fire_time + dt.timedelta(microseconds=1))
        return self._first_at_or_after(start.astimezone(UTC))  # UTC: aware comparisons ignore fold

    def _first_at_or_after(self, start: dt.datetime) -> dt.datetime | None:
        # naive wall time written as UTC, so CronTrigger matches fields without any DST logic
        probe = start.astimezone(self.timezone).replace(tzinfo=UTC)
        for _ in range(_REPEATED_HOUR_PROBES):
            wall: dt.datetime | None = self._wall.get_next_fire_time(None, probe)
            if wall is None:
                return None
            # fold=0: the first occurrence of a repeated time, the pre-change offset in a gap
            instant = wall.replace(tzinfo=self.timezone, fold=0)
            if instant >= start:
                return instant.astimezone(self.timezone)
            probe = wall + dt.timedelta(microseconds=1)  # already passed in the repeated hour
        raise RuntimeError(f"cron {self.expr!r}: no fire time found after {start.isoformat()}")

    def __str__(self) -> str:
        return f"cron {self.expr}"


def build_trigger(spec: dict[str, Any], tz: str) -> BaseTrigger:
    """A trigger from ``{"cron": EXPR}`` or ``{"every_s": SECONDS}``; raises ValueError if bad."""
    zone = ZoneInfo(tz)
    if set(spec) == {"cron"}:
        return WallClockCron(str(spec["cron"]), zone)
    if set(spec) == {"every_s"}:
        seconds = float(spec["every_s"])
        if not MIN_EVERY_S <= seconds <= MAX_EVERY_S:
            raise ValueError(
                f"every_s must be between {MIN_EVERY_S} and {MAX_EVERY_S}, got {spec['every_s']!r}"
            )
        return IntervalTrigger(seconds=seconds, start_date=EPOCH, timezone=zone)
    raise ValueError(f"a trigger is {{'cron': EXPR}} or {{'every_s': SECONDS}}, got {spec!r}")


def describe(spec: dict[str, Any]) -> str:
    """``cron 0 4 * * *`` or ``every 30s``, for the CLI and the summary."""
    if "cron" in spec:
        return f"cron {spec['cron']}"
    return f"every {float(spec['every_s']):g}s"


def next_after(trigger: BaseTrigger, after: dt.datetime) -> dt.datetime | None:
    """The first fire time strictly after ``after``, in UTC (the trigger's own time, never now)."""
    after = after.astimezone(UTC)  # aware datetimes in one zone compare ignoring fold
    fire: dt.datetime | None = trigger.get_next_fire_time(None, after + STEP)
    if fire is None:
        return None
    if fire <= after:
        raise RuntimeError(
            f"{trigger} went backwards: {fire.isoformat()} after {after.isoformat()}"
        )
    return fire.astimezone(UTC)


def fires_between(
    trigger: BaseTrigger, after: dt.datetime, until: dt.datetime, limit: int
) -> list[dt.datetime]:
    """Fire times in ``(after, until]``, oldest first, at most ``limit`` of them."""
    fires: list[dt.datetime] = []
    fire = next_after(trigger, after)
    while fire is not None and fire <= until and len(fires) < limit:
        fires.append(fire)
        fire = next_after(trigger, fire)
    return fires
