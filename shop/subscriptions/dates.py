"""When a subscription renews next: weekly steps, and monthly steps that keep their anchor day.

A monthly subscription that started on the 31st renews on the last day of shorter months and
returns to the 31st when a month has one (Jan 31 -> Feb 28/29 -> Mar 31), so the date never
drifts to the 28th for good.
"""

from __future__ import annotations

import calendar
import datetime as dt

STEP_DAYS = {"weekly": 7, "biweekly": 14}
FREQUENCIES = ("weekly", "biweekly", "monthly")


def add_months(day: dt.date, months: int, anchor_day: int | None = None) -> dt.date:
    """``day`` moved by ``months``, on ``anchor_day`` (default: ``day.day``) or the month's last day."""
    anchor = anchor_day or day.day
    if not 1 <= anchor <= 31:
        raise ValueError(f"anchor day must be 1-31, got {anchor}")
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    return dt.date(year, month, min(anchor, calendar.monthrange(year, month)[1]))


def next_delivery(day: dt.date, frequency: str, anchor_day: int | None = None) -> dt.date:
    """The delivery after the one due on ``day``."""
    if frequency in STEP_DAYS:
        return day + dt.timedelta(days=STEP_DAYS[frequency])
    if frequency == "monthly":
        return add_months(day, 1, anchor_day)
    raise ValueError(f"unknown subscription frequency {frequency!r}; expected one of {FREQUENCIES}")
