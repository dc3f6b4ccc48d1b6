"""Each operations run's statistics, stored so an operator can see what every cleanup did."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from shop.models import OpsRun


def record_run(session: Session, task: str, started_at: dt.datetime, stats: dict[str, Any]) -> None:
    """Store one run's figures (``stats`` must be JSON: counts, dates as ISO strings)."""
    session.add(OpsRun(task=task, started_at=started_at, finished_at=utcnow(), stats=stats))


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
