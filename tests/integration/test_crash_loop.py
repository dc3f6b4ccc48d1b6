"""A message that kills its worker is parked after three deliveries; nothing beside it is lost."""

from __future__ import annotations

from sqlalchemy import func, select

from jobcore.db import session_scope
from jobcore.models import DeadLetter, LedgerEntry
from tests.support.faulty_actors import kills_its_worker, noop
from tests.support.ledger import entry
from tests.support.waiting import wait_until

TEST_ACTORS = ("actors", "tests.support.faulty_actors")


def _succeeded(message_ids: list[str]) -> int:
    with session_scope() as s:
        return s.scalar(
            select(func.count())
            .select_from(LedgerEntry)
            .where(LedgerEntry.message_id.in_(message_ids), LedgerEntry.state == "succeeded")
        )


def _dead_letters() -> list[DeadLetter]:
    with session_scope() as s:
        return list(s.scalars(select(DeadLetter)))


def test_a_crash_loop_message_is_parked_after_three_deliveries_while_1000_others_complete(
    start_worker, tmp_path
):
    # Given a message that kills its worker process, sent among 1,000 ordinary messages
    runs = tmp_path / "culprit-runs"
    normal = [noop.send(i).message_id for i in range(500)]
    culprit = kills_its_worker.send(str(runs)).message_id
    normal += [noop.send(i).message_id for i in range(500, 1000)]

    # When workers run them under the supervisor, which replaces a worker process that died
    worker = start_worker(*TEST_ACTORS, processes=2, threads=4)
    wait_until(
        lambda: _succeeded(normal) == 1000 and _dead_letters(),
        timeout=120,
        what="every message to settle",
    )

    # Then the culprit ran twice (its crash among others, then alone) and its third delivery parked it
    assert runs.read_text().count("delivery") == 2
    # the fault really happened: worker processes died, were replaced, and the group never stopped
    assert worker.deaths() == 2 and worker.alive()
    dead = _dead_letters()
    assert [(d.message_id, d.reason) for d in dead] == [(culprit, "crashed_worker")]
    assert entry(culprit).state == "dead" and entry(culprit).redeliveries >= 1
    # and every ordinary message completed, none of them parked for dying beside it
    assert _succeeded(normal) == 1000
