"""Dead letters, replays, crash loops and malformed input, on real workers and RabbitMQ."""

from __future__ import annotations

import json
import uuid

from sqlalchemy import func, select

from jobcore.db import session_scope
from jobcore.models import DeadLetter
from programs.cli import main as cli
from tests.support import amqp
from tests.support.faulty_actors import always_fails, fails_until_fixed, noop
from tests.support.ledger import entry, state
from tests.support.waiting import wait_until

TEST_ACTORS = ("actors", "tests.support.faulty_actors")


def _dead(message_id: str) -> DeadLetter | None:
    with session_scope() as s:
        return s.scalars(select(DeadLetter).where(DeadLetter.message_id == message_id)).first()


def test_an_always_failing_actor_ends_in_dead_letters_with_its_final_traceback(start_worker):
    start_worker(*TEST_ACTORS)
    message_id = always_fails.send(9).message_id
    row = wait_until(lambda: _dead(message_id), what="dead letter stored")
    assert (row.reason, row.attempts, row.queue, row.actor) == (
        "failed",
        3,
        "tests",
        "tests.always_fails",
    )
    assert row.error == "RuntimeError: boom for order 9" and "raise RuntimeError" in row.traceback
    wait_until(lambda: amqp.depth("tests.XQ") == 1, what="the .XQ copy too")


def test_a_replayed_dead_letter_succeeds_once_fixed_and_the_ledger_links_both(
    start_worker, tmp_path, capsys
):
    start_worker(*TEST_ACTORS)
    fix = tmp_path / "fixed"
    old_id = fails_until_fixed.send(str(fix)).message_id
    row = wait_until(lambda: _dead(old_id), what="dead letter stored")

    fix.write_text("deployed the fix")
    assert cli(["dlq", "replay", str(row.id), "--json"]) == 0
    new_id = json.loads(capsys.readouterr().out)[0]["new_message_id"]

    wait_until(lambda: state(new_id) == "succeeded", what="replay succeeded")
    assert entry(new_id).replay_of == old_id and new_id != old_id
    assert _dead(old_id).replay_message_id == new_id
    assert cli(["dlq", "replay", str(row.id)]) == 2  # a second replay is refused


MALFORMED_KINDS = {
    "not json": lambda i: b"\x00\xff not json %d" % i,
    "json but not an object": lambda i: b"[1, 2, 3]",
    "missing fields": lambda i: json.dumps(
        {"actor_name": "tests.noop", "queue_name": "tests"}
    ).encode(),
    "wrong types": lambda i: json.dumps(
        {
            "queue_name": "tests",
            "actor_name": 5,
            "args": "x",
            "kwargs": [],
            "options": 1,
            "message_id": i,
            "message_timestamp": "t",
        }
    ).encode(),
    "unknown actor": lambda i: json.dumps(
        {
            "queue_name": "tests",
            "actor_name": "tests.nope",
            "args": [],
            "kwargs": {},
            "options": {},
            "message_id": str(uuid.uuid4()),
            "message_timestamp": 0,
        }
    ).encode(),
    "bad arguments": lambda i: json.dumps(
        {
            "queue_name": "tests",
            "actor_name": "tests.noop",
            "args": [1, 2, 3, 4],
            "kwargs": {},
            "options": {},
            "message_id": str(uuid.uuid4()),
            "message_timestamp": 0,
        }
    ).encode(),
    "deep nesting": lambda i: b"[" * 100_000 + b"]" * 100_000,
}


def test_700_malformed_bodies_of_7_kinds_are_dead_lettered_without_a_consumer_restart(start_worker):
    worker = start_worker(*TEST_ACTORS)
    children = worker.child_pids()
    for make in MALFORMED_KINDS.values():
        for i in range(100):
            amqp.publish_raw("tests", make(i))

    wait_until(lambda: amqp.depth("tests.XQ") == 700, timeout=120, what="700 messages in tests.XQ")
    with session_scope() as s:
        stored = s.scalar(select(func.count()).select_from(DeadLetter))
        biggest = s.scalar(select(func.max(func.length(DeadLetter.body))))
    assert stored == 700 and biggest >= 200_000
    assert worker.alive() and worker.child_pids() == children
    assert "Restarting consumer" not in worker.log()
    ok = noop.send(1).message_id
    wait_until(lambda: state(ok) == "succeeded", what="a good message afterwards")
