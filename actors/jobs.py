"""The shop's Job record, run by one actor that dispatches on the job's type."""

from __future__ import annotations

from typing import Any

from dramatiq.middleware import CurrentMessage

from broker import routes
from jobcore.validate import text
from shop import job_records as job_service
from shop.reports import reports  # noqa: F401  (registers the report job types)


@routes.actor("jobs.process_job")
def process_job(job_id: str) -> None:
    run_job_of_message(job_id)


def run_job_of_message(job_id: str, job_type: str | None = None) -> str:
    """Run a Job record from the actor that carries it, linking the record to this message."""
    message = CurrentMessage.get_current_message()
    return job_service.run_job(
        text(job_id, "job_id", max_len=64),
        message.message_id if message else None,
        job_type=job_type,
    )


@routes.actor("jobs.job_retries_exhausted")
def job_retries_exhausted(message_data: dict[str, Any], retry_info: dict[str, Any]) -> None:
    """Retries ran out: the Job record says failed instead of staying 'running'."""
    job_id = (message_data.get("args") or [None])[0]
    if isinstance(job_id, str):
        job_service.mark_failed(job_id, f"gave up after {retry_info.get('retries')} retries")
