"""A message that kills its worker is parked after four deliveries; nothing beside it is lost,
and an innocent whose lone run a kill from outside cut short is not parked."""

from __future__ import annotations

import os
import signal

from sqlalchemy import func, select, text

from jobcore.db import session_scope
from jobcore.models import DeadLetter, LedgerEntry
from tests.support.faulty_actors import hangs_until_killed, kills_its_worker, noop
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


def test_a_crash_loop_message_is_parked_after_four_deliveries_while_1000_others_complete(
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

    # Then the culprit ran three times (its crash among others, then alone twice) and its fourth
    # delivery parked it
    assert runs.read_text().count("delivery") == 3
    # the fault really happened: worker processes died, were replaced, and the group never stopped
    assert worker.deaths() == 3 and worker.alive()
    dead = _dead_letters()
    assert [(d.message_id, d.reason) for d in dead] == [(culprit, "crashed_worker")]
    assert entry(culprit).state == "dead" and entry(culprit).redeliveries >= 1
    # and every ordinary message completed, none of them parked for dying beside it
    assert _succeeded(normal) == 1000


def _lone_run_of(message_id: str) -> bool:
    with session_scope() as s:
        return bool(
            s.scalar(
                text(
                    "SELECT count(*) FROM crash_suspects"
                    " WHERE message_id = :id AND running_since IS NOT NULL"
                ),
                {"id": message_id},
            )
        )


def _runs(path: object) -> list[int]:
    try:
        with open(str(path)) as fh:
            return [int(line) for line in fh.read().splitlines()]
    except FileNotFoundError:
        return []


def test_an_innocent_killed_from_outside_during_its_lone_run_is_not_parked(start_worker, tmp_path):
    # Given a message that runs until its process is killed, twice, among 300 ordinary ones
    runs = tmp_path / "innocent-runs"
    normal = [noop.send(i).message_id for i in range(150)]
    innocent = hangs_until_killed.send(str(runs), 2).message_id
    normal += [noop.send(i).message_id for i in range(150, 300)]
    worker = start_worker(*TEST_ACTORS, processes=2, threads=4)

    # When its process is killed from outside while it runs among others
    first = wait_until(lambda: _runs(runs), timeout=60, what="the first run")[0]
    assert first in worker.worker_pids().values()
    os.kill(first, signal.SIGKILL)
    # and again while it runs alone as a crash suspect
    wait_until(
        lambda: len(_runs(runs)) == 2 and _lone_run_of(innocent),
        timeout=60,
        what="the innocent's lone run",
    )
    second = _runs(runs)[1]
    assert second in worker.worker_pids().values()
    os.kill(second, signal.SIGKILL)

    # Then its third run finishes it: it is not parked, and nothing beside it was
    wait_until(lambda: _succeeded([innocent]) == 1, timeout=120, what="the innocent to succeed")
    assert len(_runs(runs)) == 3
    assert worker.deaths() == 2 and worker.alive()  # the kills happened and were replaced
    assert _dead_letters() == []
    wait_until(lambda: _succeeded(normal) == 300, timeout=120, what="the others to succeed")
