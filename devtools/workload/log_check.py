"""The main job's look at its workers' log: is it quiet when all is well, and loud only for cause?

Read from ``.run/workers.log`` (JSON, one object per line) after the run:
- lines per successful job (the log must stay readable: at most 2 on average),
- ERROR lines written after the stop signal (a clean shutdown writes none: the main job fails
  on any),
- third-party request lines (httpx, httpcore, urllib3) above DEBUG, WARNING lines that carry a
  traceback (transient retries are one line without), ERROR lines without one.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import Counter

MAX_LINES_PER_JOB = 2.0
THIRD_PARTY = ("httpx", "httpcore", "urllib3")


@dataclasses.dataclass
class LogFigures:
    lines: int = 0
    by_level: Counter[str] = dataclasses.field(default_factory=Counter)
    unparsed: int = 0
    shutdown_lines: int = 0
    shutdown_errors: list[str] = dataclasses.field(default_factory=list)
    third_party: int = 0
    warnings_with_traceback: int = 0
    errors_without_traceback: int = 0

    def per_job(self, succeeded: int) -> float:
        return self.lines / max(succeeded, 1)


def offset(path: str) -> int:
    """Where ``path`` ends now: lines after it were written after this moment."""
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def measure(path: str, shutdown_at: int) -> LogFigures:
    """Figures of the worker log at ``path``; lines from byte ``shutdown_at`` on are shutdown's."""
    figures = LogFigures()
    with open(path, "rb") as fh:
        position = 0
        for raw in fh:
            at_shutdown = position >= shutdown_at
            position += len(raw)
            line = raw.decode(errors="replace").strip()
            if not line:
                continue
            figures.lines += 1
            figures.shutdown_lines += at_shutdown
            try:
                record = json.loads(line)
                level = str(record.get("level", "?")).lower()
            except (ValueError, AttributeError):
                figures.unparsed += 1  # a traceback printed outside the logging pipeline
                if at_shutdown:
                    figures.shutdown_errors.append(line[:200])
                continue
            figures.by_level[level] += 1
            traceback = "exception" in record or "exc_info" in record
            if str(record.get("logger", "")).split(".")[0] in THIRD_PARTY and level != "debug":
                figures.third_party += 1
            if level == "warning" and traceback:
                figures.warnings_with_traceback += 1
            if level in ("error", "critical"):
                figures.errors_without_traceback += not traceback
                if at_shutdown:
                    figures.shutdown_errors.append(str(record.get("event", ""))[:200])
    return figures


def report(figures: LogFigures, succeeded: int) -> list[str]:
    levels = ", ".join(f"{level} {n}" for level, n in figures.by_level.most_common())
    unparsed = f"; {figures.unparsed} not JSON" if figures.unparsed else ""
    per_job = (
        f"  {figures.lines} lines for {succeeded} successful jobs = "
        f"{figures.per_job(succeeded):.2f} lines per job (at most {MAX_LINES_PER_JOB:g}); "
        f"by level: {levels}{unparsed}"
    )
    shutdown = (
        f"  ERROR lines at shutdown: {len(figures.shutdown_errors)} "
        f"(of {figures.shutdown_lines} lines after the stop signal)"
    )
    kinds = (
        f"  third-party request lines above DEBUG: {figures.third_party}; "
        f"WARNING lines with a traceback: {figures.warnings_with_traceback}; "
        f"ERROR lines without one: {figures.errors_without_traceback}"
    )
    return [
        per_job,
        shutdown,
        kinds,
        *(f"    at shutdown: {x}" for x in figures.shutdown_errors[:5]),
    ]


def failures(figures: LogFigures, succeeded: int) -> list[str]:
    """Why the log fails the main job, if it does."""
    reasons = []
    if figures.shutdown_errors:
        reasons.append(f"{len(figures.shutdown_errors)} ERROR lines at a clean shutdown")
    if figures.per_job(succeeded) > MAX_LINES_PER_JOB:
        reasons.append(
            f"{figures.per_job(succeeded):.2f} log lines per successful job "
            f"(at most {MAX_LINES_PER_JOB:g})"
        )
    return reasons
