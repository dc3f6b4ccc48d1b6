"""Real `dramatiq` workers over the real RabbitMQ and PostgreSQL: what the ledger shows."""

from __future__ import annotations

import json
import uuid

from sqlalchemy import select

from actors.inventory import update_product_availability
from jobcore.db import session_scope
from jobcore.models import LedgerEntry
from shop.models import Product
from tests.support import amqp
from tests.support.factories import make_product
from tests.support.faulty_actors import always_fails, hang_first_time, hang_then_fail_once, noop
from tests.support.ledger import entry, state
from tests.support.waiting import wait_until

TEST_ACTORS = ("actors", "tests.support.faulty_actors")


def test_a_message_sent_from_another_process_is_run_and_recorded(start_worker):
    # Given a worker from the repository root and a product without stock that is still active
    start_worker(*TEST_ACTORS)
    with session_scope() as s:
        product_id = make_product(s, stock=0).id

    # When this process sends the message
    message_id = update_product_availability.send(product_id).message_id

    # Then the worker ran it, and the ledger says so with its attempts and timings, and the
    # arguments this process recorded at the send (its writer adds them within flush_ms)
    row = wait_until(
        lambda: (r := entry(message_id)) and r.state == "succeeded" and r.args is not None and r,
        what="succeeded, with its args",
    )
    assert row.actor == "inventory.update_product_availability" and row.queue == "inventory"
    assert row.attempts == 1
    assert row.enqueued_at <= row.started_at <= row.finished_at
    assert row.args == {"product_id": product_id}
    with session_scope() as s:
        assert s.get(Product, product_id).is_active is False


def test_a_failing_actor_shows_retrying_then_failed_with_its_error(start_worker):
    start_worker(*TEST_ACTORS)
    message_id = always_fails.send(41).message_id

    wait_until(lambda: state(message_id) == "retrying", what="retrying")
    wait_until(lambda: state(message_id) == "failed", what="failed")
    row = entry(message_id)
    assert row.attempts == 3  # the first run and max_retries=2
    assert row.error == "RuntimeError: boom for order 41"
    assert "raise RuntimeError" in row.traceback
    assert row.order_id == 41
    wait_until(lambda: amqp.depth("tests.XQ") == 1, what="message in tests.XQ")


def test_a_worker_killed_mid_job_leaves_it_to_be_redelivered_and_finished(start_worker, tmp_path):
    # Given a job that hangs on its first delivery
    worker = start_worker(*TEST_ACTORS)
    marker = tmp_path / "started"
    message_id = hang_first_time.send(str(marker)).message_id
    wait_until(lambda: state(message_id) == "running" and marker.exists(), what="job running")

    # When the worker is killed with SIGKILL in the middle of it
    worker.kill_hard()
    assert state(message_id) == "running"

    # Then a new worker gets the message again and finishes it; the ledger shows 2 attempts
    start_worker(*TEST_ACTORS)
    wait_until(lambda: state(message_id) == "succeeded", what="succeeded after redelivery")
    assert entry(message_id).attempts == 2


def test_a_deduped_job_redelivered_after_a_crash_still_gets_its_retry(start_worker, tmp_path):
    # Given a deduped job (as money and stock are) whose first run hangs in a worker
    worker = start_worker(*TEST_ACTORS)
    runs = tmp_path / "runs"
    message_id = hang_then_fail_once.send(str(runs)).message_id
    wait_until(lambda: state(message_id) == "running" and runs.exists(), what="job running")

    # When the worker is killed, and the redelivered run fails (a transient error)
    worker.kill_hard()
    start_worker(*TEST_ACTORS)

    # Then its retry runs (it is not taken for a duplicate of the redelivered run) and succeeds
    wait_until(lambda: state(message_id) == "succeeded", what="succeeded by its retry")
    assert runs.read_text().split() == ["hang", "fail", "ok"]
    row = entry(message_id)
    assert row.redeliveries == 1 and row.duplicates == 0


def test_unknown_actors_and_undecodable_bodies_go_to_the_dead_letter_queue(start_worker):
    # Given a running worker
    worker = start_worker(*TEST_ACTORS)
    unknown = {
        "queue_name": "tests",
        "actor_name": "tests.no_such_actor",
        "args": [1],
        "kwargs": {},
        "options": {},
        "message_id": str(uuid.uuid4()),
        "message_timestamp": 0,
    }

    # When bad input is published straight into its queue
    amqp.publish_raw("tests", b"this is not json {")
    amqp.publish_raw("tests", json.dumps(unknown).encode())

    # Then both end in the dead-letter queue, the worker survives and keeps consuming
    wait_until(lambda: amqp.depth("tests.XQ") == 2, what="2 messages in tests.XQ")
    assert worker.alive()
    ok = noop.send(1).message_id
    wait_until(lambda: state(ok) == "succeeded", what="a good message after the bad ones")
    row = entry(unknown["message_id"])
    assert row.state == "dead" and "ActorNotFound" in row.error


def test_the_ledger_answers_by_order_id(start_worker):
    start_worker(*TEST_ACTORS)
    ids = [
        noop.send(7).message_id,
        always_fails.send_with_options(args=(7,), max_retries=0).message_id,
    ]
    wait_until(lambda: {state(i) for i in ids} == {"succeeded", "failed"}, what="both finished")
    with session_scope() as s:
        rows = s.scalars(select(LedgerEntry).where(LedgerEntry.order_id == 7)).all()
    assert sorted(r.message_id for r in rows) == sorted(ids)
