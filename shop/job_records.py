"""The shop's Job record: a service creates a typed job with parameters; an actor runs it.

Handlers register per job type; ``run_job`` owns the record's status, progress and result, so
a handler only computes. A job that already finished is not run again (redelivery-safe).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from jobcore.db import session_scope
from jobcore.errors import InvalidInput, NotFound
from shop.models import Job

Progress = Callable[[int], None]
Handler = Callable[[dict[str, Any], Progress], Any]
_HANDLERS: dict[str, Handler] = {}
# the job a handler is computing, for handlers whose output is named after it (exports)
_current_job: contextvars.ContextVar[str] = contextvars.ContextVar("current_job")


def current_job_id() -> str:
    """The id of the job whose handler is running (``LookupError`` outside a handler)."""
    return _current_job.get()


def job_handler(job_type: str) -> Callable[[Handler], Handler]:
    """Register the function that computes jobs of ``job_type``."""

    def register(fn: Handler) -> Handler:
        _HANDLERS[job_type] = fn
        return fn

    return register


def job_types() -> list[str]:
    return sorted(_HANDLERS)


def create_job(
    session: Session, job_type: str, params: dict[str, Any], requested_by: int | None = None
) -> Job:
    """Create a pending Job in the caller's transaction (enqueue it with ``jobcore.outbox.enqueue``)."""
    if job_type not in _HANDLERS:
        raise InvalidInput(f"unknown job type {job_type!r}; known: {', '.join(job_types())}")
    if not isinstance(params, dict):
        raise InvalidInput("job params must be a JSON object")
    job = Job(id=str(uuid.uuid4()), job_type=job_type, params=params, requested_by=requested_by)
    session.add(job)
    session.flush()
    return job


def _set_progress(job_id: str) -> Progress:
    def progress(percent: int) -> None:
        with session_scope() as s:
            s.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == "running")
                .values(progress=max(0, min(100, percent)))
            )

    return progress


def run_job(job_id: str, message_id: str | None = None, *, job_type: str | None = None) -> str:
    """Run a pending or interrupted job; returns its final status ("skipped" if already done).

    ``job_type``: the only type this caller runs (an actor dedicated to one kind of job).
    """
    now = dt.datetime.now(dt.UTC)
    with session_scope() as s:
        job = s.get(Job, job_id)
        if job is None:
            raise NotFound(f"job {job_id} does not exist")
        if job_type is not None and job.job_type != job_type:
            raise InvalidInput(f"job {job_id} is a {job.job_type!r} job, not an {job_type}")
        if job.status in ("succeeded", "failed"):
            return "skipped"
        job.status, job.started_at, job.message_id, job.error = "running", now, message_id, None
        kind, params = job.job_type, dict(job.params)
    handler = _HANDLERS.get(kind)
    if handler is None:
        _finish(job_id, "failed", error=f"no handler for job type {kind!r}")
        raise InvalidInput(f"no handler for job type {kind!r}")
    token = _current_job.set(job_id)
    try:
        result = handler(params, _set_progress(job_id))
    except InvalidInput as exc:
        _finish(job_id, "failed", error=str(exc))
        raise
    finally:
        _current_job.reset(token)
    _finish(job_id, "succeeded", result=result)
    return "succeeded"


def mark_failed(job_id: str, error: str) -> None:
    """Called when the job's retries are exhausted, so its record does not stay 'running'."""
    _finish(job_id, "failed", error=error)


def _finish(job_id: str, status: str, *, result: Any = None, error: str | None = None) -> None:
    with session_scope() as s:
        s.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(
                status=status,
                result=result,
                error=error,
                progress=100 if status == "succeeded" else Job.progress,
                finished_at=dt.datetime.now(dt.UTC),
            )
        )
