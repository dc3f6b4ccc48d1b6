"""A job's sends are committed with its outcome and relayed; long delays wait in PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from collections import Counter
from pathlib import Path

import pytest
from dramatiq import Message
from sqlalchemy import text

import broker as shop_broker
from actors.orders import process_order_async
from jobcore import outbox
from jobcore.db import session_scope
from jobcore.ledger import lost, stranded
from jobcore.ledger.writer import Change, LedgerWriter, connect_psycopg, now
from jobcore.sends import Send
from programs.cli import main as cli
from shop.models import Order
from shop.orders.stranded import stranded_orders
from tests.support import amqp
from tests.support.durable_actors import enqueue_then_roll_back, hand_on, retry_later
from tests.support.factories import make_order, make_product, make_user
from tests.support.faulty_actors import touch
from tests.support.ledger import entry, state
from tests.support.waiting import wait_until

ACTORS = ("actors", "tests.support.faulty_actors", "tests.support.durable_actors")
HELD_AFTER = {"SHOPJOBS_DELAY_IN_DB_AFTER_S": "2"}  # delays over 2 s wait in PostgreSQL


@pytest.fixture()
def held_after_2s(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process holds delays over 2 s in PostgreSQL too, as the workers will."""
    monkeypatch.setattr(shop_broker.broker, "delay_in_db_after_ms", 2000)


def _outbox() -> dict[str, dt.datetime | None]:
    with session_scope() as s:
        return dict(s.execute(text("SELECT message_id, due_at FROM outbox")).all())


def _outbox_of(path: Path) -> dict[str, dt.datetime | None]:
    """The outbox rows of the jobs whose argument ``path`` is ``path``."""
    with session_scope() as s:
        return dict(
            s.execute(
                text(
                    "SELECT o.message_id, o.due_at FROM outbox o JOIN job_ledger j USING (message_id)"
                    " WHERE j.args->>'path' = :path"
                ),
                {"path": str(path)},
            ).all()
        )


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_a_long_delay_waits_in_postgresql_runs_once_on_time_and_a_cancelled_one_never_runs(
    start_worker, held_after_2s, tmp_path
):
    # Given workers that hold delays over 2 s in PostgreSQL
    start_worker(*ACTORS, env=HELD_AFTER)
    kept_path, cancelled_path = tmp_path / "kept", tmp_path / "cancelled"

    # When two jobs are sent 6 s ahead
    kept = touch.send_with_options(args=(str(kept_path),), delay=6000).message_id
    cancelled = touch.send_with_options(args=(str(cancelled_path),), delay=6000).message_id

    # Then both wait in the outbox with their due time, nothing waits in RabbitMQ, and the
    # ledger says 'scheduled' with the same due time
    held = _outbox()
    assert set(held) == {kept, cancelled} and all(held.values())
    assert amqp.depth("tests") == 0 and amqp.depth("tests.DQ") == 0
    row = entry(kept)
    assert row.state == "scheduled" and row.eta == held[kept]

    # When an operator cancels one before it is due
    assert cli(["jobs", "cancel", cancelled, "--reason", "customer called"]) == 0
    assert set(_outbox()) == {kept}

    # Then the other runs once, on time by the database clock; the cancelled one never runs
    wait_until(lambda: state(kept) == "succeeded", timeout=30, what="the held job ran")
    row = entry(kept)
    late_s = (row.started_at - row.eta).total_seconds()
    assert -0.1 <= late_s < 2.0, late_s
    assert _lines(kept_path) == 1 and row.attempts == 1
    wait_until(lambda: _outbox() == {}, what="the relay deleted the published row")
    wait_until(lambda: amqp.depth("tests") == 0, what="queue drained")
    assert not cancelled_path.exists() and state(cancelled) == "cancelled"


def test_a_retry_with_a_long_backoff_is_committed_with_the_failure_and_held_in_postgresql(
    start_worker, tmp_path
):
    # Given workers that hold delays over 2 s in PostgreSQL, and a job whose first run fails
    # with a retry backoff of 3-6 s
    start_worker(*ACTORS, env=HELD_AFTER)
    path = tmp_path / "runs"
    message_id = retry_later.send(str(path)).message_id

    # When the first run has failed
    def retry_state() -> tuple[str, dt.datetime, dt.datetime] | None:
        with session_scope() as s:
            return s.execute(
                text(
                    "SELECT j.state, j.eta, o.due_at FROM job_ledger j LEFT JOIN outbox o USING (message_id)"
                    " WHERE j.message_id = :id AND j.state = 'retrying'"
                ),
                {"id": message_id},
            ).first()

    _, eta, due_at = wait_until(retry_state, what="the first run recorded as retrying")

    # Then, in the same commit, its retry waits in the outbox (not in RabbitMQ) until its ETA
    assert due_at is not None and eta == due_at
    assert amqp.depth("tests.DQ") == 0

    # And the retry runs once, on time
    wait_until(lambda: state(message_id) == "succeeded", timeout=30, what="the retry ran")
    row = entry(message_id)
    assert _lines(path) == 2 and row.attempts == 2
    assert -0.1 <= (row.started_at - eta).total_seconds() < 2.0
    wait_until(lambda: _outbox() == {}, what="the relay deleted the published row")


def test_a_jobs_delayed_send_is_held_and_its_short_sends_are_relayed(start_worker, tmp_path):
    # Given workers that hold delays over 2 s in PostgreSQL
    start_worker(*ACTORS, env=HELD_AFTER)
    later, now_path = tmp_path / "later", tmp_path / "now"

    # When jobs send a follow-up 5 s ahead and one at once
    hand_on.send(str(later), 5000)
    hand_on.send(str(now_path))

    # Then the immediate one runs, and the delayed one waits in the outbox, ledger 'scheduled'
    wait_until(lambda: now_path.exists(), what="the immediate follow-up ran")
    held = wait_until(lambda: _outbox_of(later), what="the delayed follow-up held")
    [(held_id, due_at)] = held.items()
    assert entry(held_id).state == "scheduled" and entry(held_id).eta == due_at
    assert amqp.depth("tests.DQ") == 0
    wait_until(lambda: later.exists(), timeout=30, what="the delayed follow-up ran")
    assert _lines(later) == 1 and _lines(now_path) == 1
    wait_until(lambda: _outbox() == {}, what="the relay deleted the published row")


def test_a_rollback_inside_a_job_publishes_nothing(start_worker, tmp_path):
    start_worker(*ACTORS)
    path = tmp_path / "never"
    message_id = enqueue_then_roll_back.send(str(path)).message_id

    wait_until(lambda: state(message_id) == "failed", what="the job failed")
    with session_scope() as s:
        touches = s.execute(
            text("SELECT count(*) FROM job_ledger WHERE actor = 'tests.touch'")
        ).scalar()
    assert touches == 0 and _outbox() == {}
    assert amqp.depth("tests") == 0 and not path.exists()


STEPS = "payments.validate_payment,orders.reserve_inventory,orders.send_to_warehouse,orders.notify_customer"


def test_a_publish_failure_right_after_each_commit_loses_no_step_and_no_retry(
    stand_ins, start_worker, tmp_path
):
    # Given workers whose relay fails its first publish after each commit of job sends, and
    # whose direct publishes of pipeline steps always fail (the path a step took before)
    evidence = tmp_path / "faults"
    start_worker(
        *ACTORS,
        processes=2,
        threads=4,
        env={
            "SHOPJOBS_TEST_RELAY_FAULTS": str(evidence),
            "SHOPJOBS_TEST_DIRECT_PUBLISH_FAILS": STEPS,
        },
    )
    with session_scope() as s:
        product = make_product(s, stock=100, price_cents=1000)
        user = make_user(s)
        ids = [
            make_order(s, user=user, lines=[(product, 1)], payment_token="tok_visa").id
            for _ in range(20)
        ]

    # When 20 orders run through the pipeline, and a job's retry is re-enqueued
    for order_id in ids:
        process_order_async.send(order_id)
    retried = tmp_path / "retried"
    retry_id = retry_later.send_with_options(
        args=(str(retried),), max_backoff=200, min_backoff=100
    ).message_id

    # Then every order completes, the retry runs, and the faults really happened
    def statuses() -> Counter[str] | None:
        with session_scope() as s:
            found = Counter(
                s.scalars(text("SELECT status FROM orders WHERE id = ANY(:ids)"), {"ids": ids})
            )
        return found if found["completed"] == len(ids) else None

    assert wait_until(statuses, timeout=120, interval=0.25, what="every order completed")
    wait_until(lambda: state(retry_id) == "succeeded", timeout=30, what="the retry ran")
    assert _lines(retried) == 2
    assert _lines(evidence) >= 5
    wait_until(lambda: _outbox() == {}, what="outbox drained")
    with session_scope() as s:
        assert s.get(Order, ids[0]).status == "completed"

    # And nothing is stranded once the last e-mails ran: no send unpublished, no job waiting
    # that no queue holds, no order unsettled without a job
    def stranded_now() -> dict[str, int] | None:
        with session_scope() as s:
            ids = lost.lost_ids(s, os.environ["SHOPJOBS_AMQP_URL"], 0, fifo=True)
            found = stranded.find(s, 0, lost=ids, checks={"orders": stranded_orders})
        return None if found.total else found.counts

    assert wait_until(stranded_now, timeout=30, what="nothing stranded") == {
        "unpublished": 0,
        "lost": 0,
        "orders": 0,
    }


def _stranded(capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    code = cli(["jobs", "stranded", "--older-than", "60", "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_stranded_work_is_listed_by_kind_until_a_relay_publishes_it(start_worker, tmp_path, capsys):
    # Given, 2 minutes ago: a committed send whose publish never happened (no relay ran), a
    # ledger row 'enqueued' whose message is in no queue and no outbox, and a paid order with
    # no job pending; and a fresh send and a fresh order, which are not stranded yet
    amqp.declare("tests")
    path = tmp_path / "late"
    with session_scope() as s:
        unpublished = outbox.enqueue(s, touch, str(path))
        lost = outbox.enqueue(s, touch, str(tmp_path / "lost"))
        s.info.pop("shopjobs.outbox")  # the after-commit publish dies with its process
        stuck = make_order(s, status="paid").id
        fresh_order = make_order(s, status="paid").id
        outbox.enqueue(s, touch, str(tmp_path / "fresh"))
        s.info.pop("shopjobs.outbox")
    with session_scope() as s:
        s.execute(text("DELETE FROM outbox WHERE message_id = :id"), {"id": lost})
        s.execute(
            text(
                "UPDATE outbox SET created_at = now() - interval '2 minutes' WHERE message_id = :id"
            ),
            {"id": unpublished},
        )
        s.execute(
            text(
                "UPDATE job_ledger SET enqueued_at = now() - interval '2 minutes'"
                " WHERE message_id IN (:a, :b)"
            ),
            {"a": unpublished, "b": lost},
        )
        s.execute(
            text("UPDATE orders SET updated_at = now() - interval '2 minutes' WHERE id = :id"),
            {"id": stuck},
        )

    # When an operator asks what is stranded for over a minute
    code, found = _stranded(capsys)

    # Then each kind names exactly its item, and the exit code says something is stranded
    assert code == 1
    assert found["counts"] == {"unpublished": 1, "lost": 1, "orders": 1}
    by_kind = {row["kind"]: row for row in found["stranded"]}
    assert by_kind["unpublished"]["message_id"] == unpublished
    assert by_kind["lost"]["message_id"] == lost
    assert by_kind["orders"]["order_id"] == stuck != fresh_order

    # When a worker (and its relay) runs, the unpublished send leaves and runs
    start_worker(*ACTORS)
    wait_until(lambda: state(unpublished) == "succeeded", timeout=60, what="the stranded send ran")
    code, found = _stranded(capsys)
    assert found["counts"] == {"unpublished": 0, "lost": 1, "orders": 1} and code == 1
    assert path.exists()


def _send(message_id: str, hold_ms: int = 0, retries: int | None = None) -> Send:
    body = Message(
        queue_name="tests",
        actor_name="tests.touch",
        args=("x",),
        kwargs={},
        options={} if retries is None else {"retries": retries},
        message_id=message_id,
    ).encode()
    return Send(message_id, "tests.touch", "tests", body, None, hold_ms, {"args": '{"path": "x"}'})


def test_a_final_state_and_its_sends_commit_together_even_when_two_copies_send_the_same_retry(
    clean,
):
    # Given two copies of one delivery in one process, each failing and sending the same
    # retry (a redelivery running beside the first), flushed in one batch
    writer = LedgerWriter(
        connect_psycopg(os.environ["SHOPJOBS_DATABASE_URL"].replace("+psycopg2", ""))
    )
    job, follow_up = str(uuid.uuid4()), str(uuid.uuid4())
    t = now()
    writer.record(Change(job, "tests.touch", "tests", "retrying", t, sends=[_send(job)]))
    ticket = writer.record(
        Change(
            job,
            "tests.touch",
            "tests",
            "retrying",
            t + 0.01,
            sends=[_send(job), _send(follow_up, hold_ms=60_000)],
        ),
        urgent=True,
    )

    # When it is flushed, it commits: the outcome, one retry row, the held follow-up
    writer.wait_durable(ticket)
    held = _outbox()
    assert set(held) == {job, follow_up} and held[follow_up] is not None
    assert state(job) == "retrying" and state(follow_up) == "scheduled"
    assert entry(follow_up).eta == held[follow_up]
    writer.close()


def test_a_retry_replaces_its_own_unpublished_first_send_and_an_older_attempt_never_does(clean):
    # Given a message whose first send still waits in the outbox (a relay died between its
    # confirm and its commit, or a copy of the message ran before the relay got to it)
    writer = LedgerWriter(
        connect_psycopg(os.environ["SHOPJOBS_DATABASE_URL"].replace("+psycopg2", ""))
    )
    job = str(uuid.uuid4())
    writer.wait_durable(writer.record(_enqueued_with(job, _send(job)), urgent=True))

    # When the copy that ran fails and its retry (attempt 2, held 60 s) is committed
    writer.wait_durable(
        writer.record(
            Change(job, "tests.touch", "tests", "retrying", now(), sends=[_send(job, 60_000, 1)]),
            urgent=True,
        )
    )

    # Then the row is the retry: published, it runs as attempt 2, not as a copy of attempt 1
    # that the dedupe claim would skip (the retry was lost that way)
    assert _outbox_retries(job) == 1 and _outbox()[job] is not None
    # and a later send of an older attempt (a sweep's re-queue, a chunk fanned out twice)
    # leaves the newer attempt in place
    writer.wait_durable(writer.record(_enqueued_with(job, _send(job)), urgent=True))
    assert _outbox_retries(job) == 1
    writer.close()


def _enqueued_with(job: str, send: Send) -> Change:
    """A change of another job that sends ``send`` (its final state commits it)."""
    return Change(str(uuid.uuid4()), "tests.touch", "tests", "succeeded", now(), sends=[send])


def _outbox_retries(message_id: str) -> int:
    with session_scope() as s:
        body = s.scalar(text("SELECT body FROM outbox WHERE message_id = :m"), {"m": message_id})
    return int(json.loads(bytes(body))["options"].get("retries", 0))


def test_a_hundred_held_jobs_each_run_once_within_two_seconds_of_their_due_time(
    start_worker, held_after_2s, tmp_path, capsys
):
    # Given workers that hold delays over 2 s in PostgreSQL
    start_worker(*ACTORS, processes=2, threads=4, env=HELD_AFTER)

    # When 100 jobs are sent 8 s ahead, each with its own file
    paths = [tmp_path / f"job-{i}" for i in range(100)]
    ids = [touch.send_with_options(args=(str(p),), delay=8000).message_id for p in paths]
    assert len(_outbox()) == 100 and amqp.depth("tests.DQ") == 0

    # Then each runs once, between its due time and 2 s after it (by the database clock)
    wait_until(
        lambda: all(state(i) == "succeeded" for i in ids),
        timeout=60,
        interval=0.25,
        what="every held job ran",
    )
    with session_scope() as s:
        late = [
            float(x)
            for x in s.scalars(
                text(
                    "SELECT EXTRACT(EPOCH FROM started_at - eta) FROM job_ledger WHERE message_id = ANY(:ids)"
                ),
                {"ids": ids},
            )
        ]
    assert [_lines(p) for p in paths] == [1] * 100
    assert len(late) == 100 and -0.1 <= min(late) and max(late) < 2.0, (min(late), max(late))
    with capsys.disabled():
        late.sort()
        print(
            f"\nheld-delay lateness over 100 jobs: min {late[0]:.3f}s median {late[50]:.3f}s "
            f"p95 {late[95]:.3f}s max {late[-1]:.3f}s"
        )


def test_the_six_hour_delivery_check_waits_in_postgresql_not_in_rabbitmq(clean):
    # Given the shop's settings (delays over 30 s are held) and its delivery check delay
    from actors.orders import check_delivery

    delay_s = shop_broker.settings.delivery_check_delay_s
    assert delay_s == 21_600 and shop_broker.broker.delay_in_db_after_ms == 30_000

    # When the check is sent 6 hours ahead (as update_order_tracking does)
    message_id = check_delivery.send_with_options(args=(42,), delay=delay_s * 1000).message_id

    # Then it waits in the outbox, due in 6 hours by the database clock, and RabbitMQ holds nothing
    with session_scope() as s:
        due_in = s.execute(
            text("SELECT EXTRACT(EPOCH FROM due_at - now()) FROM outbox WHERE message_id = :id"),
            {"id": message_id},
        ).scalar()
    assert 21_590 < float(due_in) <= 21_600
    row = entry(message_id)
    assert row.state == "scheduled" and row.order_id == 42 and row.eta is not None
    assert amqp.depth("orders") <= 0 and amqp.depth("orders.DQ") <= 0  # -1: never declared
