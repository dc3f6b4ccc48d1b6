from __future__ import annotations

import json

import dramatiq
from dramatiq.brokers.stub import StubBroker

from jobcore.ledger.args import ledger_fields
from jobcore.ledger.writer import Change

broker = StubBroker()


@dramatiq.actor(broker=broker, actor_name="unit.charge")
def charge(order_id: int, user_id: int, card_token: str, email: str, note: str = "") -> None: ...


def test_args_are_named_redacted_and_business_ids_extracted():
    message = charge.message(12, 34, "tok_secret", "alice@example.test", note="gift")
    fields = ledger_fields(charge, message)
    args = json.loads(fields["args"])
    assert args == {
        "order_id": 12,
        "user_id": 34,
        "card_token": "[redacted]",
        "email": "[redacted]",
        "note": "gift",
    }
    assert (fields["order_id"], fields["user_id"]) == (12, 34)


def test_large_args_are_capped():
    message = charge.message(1, 2, "t", "e", note="x" * 10_000)
    fields = ledger_fields(charge, message, max_bytes=256)
    assert len(fields["args"]) < 400 and json.loads(fields["args"])["truncated"] is True


def test_ids_of_the_wrong_type_are_not_taken_as_business_ids():
    message = charge.message("12", True, "t", "e")
    fields = ledger_fields(charge, message)
    assert fields["order_id"] is None and fields["user_id"] is None


def test_changes_merge_like_the_upsert():
    running = Change("m", "a", "q", "running", 10.0, started_at=10.0, attempts=1, args='{"a":1}')
    running.absorb(Change("m", "a", "q", "enqueued", 5.0, enqueued_at=5.0))
    running.absorb(Change("m", "a", "q", "succeeded", 11.0, finished_at=11.0))
    running.absorb(Change("m", "a", "q", "skipped", 12.0, duplicates=1))
    assert (running.state, running.attempts, running.duplicates) == ("succeeded", 1, 1)
    assert (running.enqueued_at, running.started_at, running.finished_at) == (5.0, 10.0, 11.0)
