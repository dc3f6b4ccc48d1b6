"""The shop's Job record: created by a service, run by a worker, its status and result readable."""

from __future__ import annotations

from actors.jobs import process_job
from jobcore import outbox
from jobcore.db import session_scope
from shop.job_records import create_job
from shop.models import Job
from tests.support.factories import make_order
from tests.support.ledger import entry
from tests.support.waiting import wait_until


def _job(job_id: str) -> Job:
    with session_scope() as s:
        return s.get(Job, job_id)


def test_a_job_is_created_run_and_its_result_read_back(start_worker):
    start_worker("actors")
    with session_scope() as s:
        for status in ("pending", "pending", "cancelled"):
            make_order(s, status=status)
        job = create_job(s, "order_stats", {"from": "2000-01-01", "to": "2100-01-01"})
        message_id = outbox.enqueue(s, process_job, job.id)
        job_id = job.id

    done = wait_until(
        lambda: _job(job_id).status in ("succeeded", "failed") and _job(job_id), what="job done"
    )
    assert done.status == "succeeded" and done.progress == 100
    assert done.result["orders"] == 3
    assert done.result["by_status"]["pending"]["orders"] == 2
    assert done.message_id == message_id
    wait_until(lambda: entry(message_id).state == "succeeded", what="ledger succeeded")
    assert entry(message_id).job_id == job_id


def test_a_job_with_bad_parameters_fails_at_once_with_the_reason(start_worker):
    start_worker("actors")
    with session_scope() as s:
        job = create_job(s, "order_stats", {"from": "yesterday"})
        message_id = outbox.enqueue(s, process_job, job.id)
        job_id = job.id
    wait_until(lambda: entry(message_id) and entry(message_id).state == "failed", what="failed")
    assert entry(message_id).attempts == 1  # a permanent error is not retried
    failed = _job(job_id)
    assert failed.status == "failed" and "YYYY-MM-DD" in failed.error
