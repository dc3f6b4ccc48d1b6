"""Acks released many per ledger commit (``basic_ack(multiple=True)``) on a real worker and RabbitMQ.

A multiple ack settles every delivery of the channel up to its tag; these tests show it never
reaches a delivery that is still running or that is rejected, and that every ack still follows
its ledger commit.
"""

from __future__ import annotations

import os
import subprocess

from sqlalchemy import create_engine, select, text

from jobcore.db import session_scope
from jobcore.models import LedgerEntry
from tests.support import amqp
from tests.support.faulty_actors import always_fails, hang_first_time, noop, touch
from tests.support.ledger import entry, state
from tests.support.waiting import wait_until

TEST_ACTORS = ("actors", "tests.support.faulty_actors")


def _unacked(queue: str) -> int:
    """Deliveries of ``queue`` not yet acked or rejected, as RabbitMQ counts them."""
    vhost = amqp.vhost()
    out = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "-p", vhost, "name", "messages_unacknowledged"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    for line in out.splitlines():
        name, _, count = line.rpartition("\t")
        if name == queue:
            return int(count)
    return -1


def _rows(message_ids: list[str]) -> list[LedgerEntry]:
    with session_scope() as s:
        return list(
            s.scalars(select(LedgerEntry).where(LedgerEntry.message_id.in_(message_ids))).all()
        )


def test_a_running_delivery_is_not_acked_by_the_multiple_ack_of_later_ones(start_worker, tmp_path):
    # Given one worker process whose first delivery hangs while 40 later ones finish
    worker = start_worker(*TEST_ACTORS, processes=1, threads=4)
    marker = tmp_path / "started"
    hung = hang_first_time.send(str(marker)).message_id
    wait_until(lambda: state(hung) == "running" and marker.exists(), what="first job running")
    later = [noop.send(i).message_id for i in range(40)]
    wait_until(
        lambda: all(r.state == "succeeded" for r in _rows(later)) and len(_rows(later)) == 40,
        what="the later jobs succeeded",
    )

    # When their acks have reached RabbitMQ (only the hung delivery is unacked) and the
    # worker is then killed mid-job
    wait_until(lambda: _unacked("tests") == 1, timeout=30, what="one unacked delivery left")
    worker.kill_hard()

    # Then the hung delivery comes back and finishes, and none of the later ones ran twice
    start_worker(*TEST_ACTORS, processes=1, threads=4)
    wait_until(lambda: state(hung) == "succeeded", what="the hung job redelivered and finished")
    assert entry(hung).attempts == 2
    assert [(r.attempts, r.duplicates) for r in _rows(later)] == [(1, 0)] * 40


def test_rejected_deliveries_between_acked_ones_go_to_the_dead_letters_once(start_worker):
    # Given a worker, and successes and failures for good interleaved on one channel
    worker = start_worker(*TEST_ACTORS, processes=1, threads=4)
    ok, failed = [], []
    for i in range(60):
        if i % 10 == 5:
            failed.append(always_fails.send_with_options(args=(i,), max_retries=0).message_id)
        else:
            ok.append(noop.send(i).message_id)

    # When every job has reached its final state
    wait_until(
        lambda: (
            [r.state for r in _rows(ok + failed)].count("succeeded") == len(ok)
            and [r.state for r in _rows(failed)] == ["failed"] * len(failed)
        ),
        what="every job final",
    )

    # Then each failure is rejected into the dead-letter queue once, every success is acked
    # (nothing is left unacked), the channel never failed, and nothing ran twice
    wait_until(lambda: amqp.depth("tests.XQ") == len(failed), what="failures dead-lettered")
    wait_until(lambda: _unacked("tests") == 0, timeout=30, what="nothing left unacked")
    assert amqp.depth("tests") == 0
    assert all((r.attempts, r.duplicates) == (1, 0) for r in _rows(ok + failed))
    log = worker.log()
    assert "PRECONDITION_FAILED" not in log and "Consumer encountered" not in log


def test_no_delivery_is_acked_before_its_ledger_row_commits(start_worker, tmp_path):
    # Given a worker, and the ledger table locked so that no ledger write can commit
    start_worker(*TEST_ACTORS, processes=1, threads=4)
    engine = create_engine(os.environ["SHOPJOBS_DATABASE_URL"])
    with engine.connect() as lock:
        lock.execute(text("LOCK TABLE job_ledger IN EXCLUSIVE MODE"))
        # When 12 jobs run to their end meanwhile
        paths = [tmp_path / f"ran-{i}" for i in range(12)]
        sent = [touch.send(str(path)).message_id for path in paths]
        wait_until(lambda: all(p.exists() for p in paths), what="the jobs ran")

        # Then none of them is acked while their final state cannot commit
        assert _unacked("tests") == 12
        lock.rollback()

    # and once the ledger commits, all are recorded and acked
    wait_until(lambda: [r.state for r in _rows(sent)] == ["succeeded"] * 12, what="recorded")
    wait_until(lambda: _unacked("tests") == 0, timeout=30, what="acked after the commit")
    engine.dispose()
