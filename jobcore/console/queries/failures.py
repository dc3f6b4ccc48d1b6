"""Failures grouped by fingerprint: error class, normalised message, innermost frame.

Computed in Python over the failed jobs of a window (capped), since a fingerprint needs the
traceback's last frame; the cap is shown on the page.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from jobcore.models import LedgerEntry

FAILED = ("failed", "dead")
SCAN_CAP = 20_000
NUMBER = re.compile(r"\b\d+(\.\d+)?\b")
HEX = re.compile(
    r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b|\b0x[0-9a-f]+\b",
    re.IGNORECASE,
)
QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
FRAME = re.compile(r'File "([^"]+)", line \d+, in (\S+)')


def fingerprint_parts(error: str | None, traceback: str | None) -> tuple[str, str, str]:
    text = (error or "").strip().splitlines()[0] if error else ""
    kind, _, message = text.partition(":")
    if not message:
        kind, message = (text, "") if text and " " not in text else ("Error", text)
    normal = QUOTED.sub("'…'", HEX.sub("<id>", NUMBER.sub("<n>", message.strip())))[:160]
    frames = FRAME.findall(traceback or "")
    frame = ""
    if frames:
        path, func = frames[-1]
        frame = (
            f"{path.rsplit('/', 2)[-2:][0]}/{path.rsplit('/', 1)[-1]}:{func}"
            if "/" in path
            else f"{path}:{func}"
        )
    return kind.strip() or "Error", normal, frame


@dataclasses.dataclass
class Group:
    key: str
    kind: str
    message: str
    frame: str
    actors: set[str]
    count: int
    first: dt.datetime
    last: dt.datetime
    sample: str
    buckets: list[int]


def groups(
    session: Session, since: dt.datetime, now: dt.datetime, buckets: int = 24
) -> tuple[list[Group], bool]:
    """Fingerprint groups of jobs that failed since ``since``, most frequent first, and whether
    the scan hit its cap."""
    rows = session.execute(
        select(
            LedgerEntry.message_id,
            LedgerEntry.actor,
            LedgerEntry.error,
            LedgerEntry.traceback,
            LedgerEntry.state_changed_at,
        )
        .where(LedgerEntry.state.in_(FAILED), LedgerEntry.state_changed_at >= since)
        .order_by(LedgerEntry.state_changed_at.desc())
        .limit(SCAN_CAP + 1)
    ).all()
    capped = len(rows) > SCAN_CAP
    span = max((now - since).total_seconds(), 1.0)
    found: dict[str, Group] = {}
    for mid, actor, error, tb, at in rows[:SCAN_CAP]:
        kind, message, frame = fingerprint_parts(error, tb)
        key = hashlib.sha1(f"{kind}|{message}|{frame}".encode()).hexdigest()[:12]
        group = found.get(key)
        if group is None:
            group = found[key] = Group(
                key, kind, message, frame, set(), 0, at, at, mid, [0] * buckets
            )
        group.actors.add(actor)
        group.count += 1
        group.first = min(group.first, at)
        group.last = max(group.last, at)
        index = min(buckets - 1, max(0, int((at - since).total_seconds() / span * buckets)))
        group.buckets[index] += 1
    return sorted(found.values(), key=lambda g: (-g.count, g.kind)), capped
