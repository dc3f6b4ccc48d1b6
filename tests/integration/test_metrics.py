"""A real ``dramatiq`` instance's /metrics: all processes in one scrape, restarts, promtool."""

from __future__ import annotations

import os

from sqlalchemy import func, select

import broker
from devtools.ports import free_port
from jobcore.db import session_scope
from jobcore.models import LedgerEntry
from tests.support.faulty_actors import always_fails, noop
from tests.support.metrics import (
    instance_dir,
    per_process,
    promtool_check,
    samples,
    scrape,
    total,
    try_scrape,
)
from tests.support.waiting import wait_until

TEST_ACTORS = ("actors", "tests.support.faulty_actors")
JOBS = "shopjobs_jobs_total"


def _succeeded(actor: str) -> int:
    with session_scope() as s:
        return s.scalar(
            select(func.count()).where(LedgerEntry.actor == actor, LedgerEntry.state == "succeeded")
        )


def _start(start_worker, port: int, processes: int = 2):
    worker = start_worker(
        *TEST_ACTORS, processes=processes, threads=4, env={"SHOPJOBS_METRICS_PORT": str(port)}
    )
    wait_until(lambda: try_scrape(port), timeout=30, what="the metrics endpoint")
    return worker


def test_a_two_process_worker_counts_500_jobs_across_its_processes_in_one_scrape(start_worker):
    # Given a worker instance of 2 processes with its metrics endpoint
    port = free_port()
    worker = _start(start_worker, port)

    # When 500 jobs run through it
    for i in range(500):
        noop.send(i)
    broker.flush_ledger()
    wait_until(lambda: _succeeded("tests.noop") >= 500, timeout=90, what="500 jobs succeeded")
    assert _succeeded("tests.noop") == 500

    # Then one scrape counts all 500, though both processes ran some of them
    wait_until(lambda: total(scrape(port), JOBS, actor="tests.noop") == 500, what="500 counted")
    text = scrape(port)
    assert total(text, JOBS, actor="tests.noop", queue="tests", outcome="succeeded") == 500
    assert total(text, "shopjobs_job_duration_seconds_count", actor="tests.noop") == 500
    assert total(text, "shopjobs_job_queue_wait_seconds_count", queue="tests") == 500
    assert total(text, "shopjobs_jobs_in_progress", actor="tests.noop") == 0
    by_process = per_process(worker.pid, JOBS, actor="tests.noop")
    assert set(by_process) <= set(worker.child_pids()) and len(by_process) == 2
    assert all(count > 0 for count in by_process.values()) and sum(by_process.values()) == 500
    # the queue collector reads RabbitMQ and the ledger at scrape time
    assert total(text, "shopjobs_metrics_source_up") == 2
    assert samples(text, "shopjobs_queue_messages", queue="orders", state="ready")
    assert total(text, "shopjobs_queue_oldest_message_age_seconds", queue="orders") == 0

    # and Prometheus' own linter accepts the exposition as it is served
    checked = promtool_check("metrics", stdin=text)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_restarted_worker_neither_double_counts_nor_keeps_stale_series(start_worker):
    # Given an instance that ran 30 jobs, 3 of them failing for good (with retries)
    port = free_port()
    first = _start(start_worker, port, processes=1)
    for i in range(27):
        noop.send(i)
    for i in range(3):
        always_fails.send_with_options(args=(i,), max_retries=0)
    broker.flush_ledger()
    wait_until(lambda: total(scrape(port), JOBS) == 30, what="30 counted")
    assert total(scrape(port), JOBS, actor="tests.always_fails", outcome="failed") == 3
    old_dir = instance_dir(first.pid)
    assert os.path.isdir(old_dir)

    # When it is killed outright and a new instance starts on the same port and runs 10 jobs
    first.kill_hard()
    second = _start(start_worker, port, processes=1)
    for i in range(10):
        noop.send(i)
    broker.flush_ledger()
    wait_until(lambda: total(scrape(port), JOBS) >= 10, what="10 counted")

    # Then it counts its own 10 only, shows no series of the failed actor, and the dead
    # instance's files are gone
    text = scrape(port)
    assert total(text, JOBS) == 10
    assert not samples(text, JOBS, actor="tests.always_fails")
    assert not samples(text, "shopjobs_dead_letters_total", reason="failed")
    assert not os.path.exists(old_dir)
    assert os.path.isdir(instance_dir(second.pid))


def test_the_scheduler_serves_its_leadership_and_fires_on_its_own_endpoint(clean, tmp_path):
    from shop.scheduling.process import start_scheduler
    from tests.support import scheduled_actors

    # Given a scheduler with its metrics endpoint and a schedule that fires every second
    port = free_port()
    scheduler = start_scheduler(
        {
            "SHOPJOBS_SCHEDULE_MODULE": scheduled_actors.MODULE,
            "SHOPJOBS_SCHEDULER_METRICS_PORT": str(port),
        },
        log_path=str(tmp_path / "scheduler.log"),
        tick_s=0.5,
    )
    try:
        # Then one scrape shows it leads and has fired, as Prometheus' linter accepts
        text = wait_until(
            lambda: (
                (t := try_scrape(port))
                and total(
                    t, "shopjobs_scheduler_fires_total", schedule=scheduled_actors.EVERY_SECOND
                )
                >= 2
                and t
            ),
            what="two fires counted",
        )
        assert total(text, "shopjobs_scheduler_leader") == 1
        assert total(text, "shopjobs_scheduler_leadership_changes_total") == 1
        checked = promtool_check("metrics", stdin=text)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    finally:
        scheduler.stop()
