"""Which deliveries of a deduped job may run: the ledger's claim, delivery after delivery.

``attempts`` counts runs; the claim compares attempt numbers (a retry's number + 1). Before it
did, a crash's redelivery that failed sent a retry the claim took for a duplicate: the job
stayed 'retrying' for ever (the cluster's cut-host test found it).
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import update

import broker  # noqa: F401  (configures the database, as every worker process does)
from jobcore.db import session_scope
from jobcore.ledger import store
from jobcore.ledger.states import State
from jobcore.ledger.writer import Change, now
from jobcore.models import LedgerEntry
from tests.support.ledger import entry

# a step: (attempt, redelivered, may it run?) for a delivery, or a state its run left
Step = tuple[int, bool, bool] | State
CASES: dict[str, list[Step]] = {
    "a retry after a crash's redelivered run failed runs": [
        (1, False, True),
        (1, True, True),
        State.RETRYING,
        (2, False, True),
    ],
    "the second copy of a retry that both runs of a redelivery sent is skipped": [
        (1, False, True),
        (1, True, True),
        State.RETRYING,
        (2, False, True),
        (2, False, False),
    ],
    "a crash's redelivery of the attempt that runs runs again": [
        (1, False, True),
        (1, True, True),
        (1, True, True),
    ],
    "a second copy of a claimed attempt is skipped": [(1, False, True), (1, False, False)],
    "a redelivery of an older attempt is skipped": [
        (1, False, True),
        State.RETRYING,
        (2, False, True),
        (1, True, False),
    ],
    "a retry of a job that succeeded meanwhile is skipped": [
        (1, False, True),
        (1, True, True),
        State.SUCCEEDED,
        (2, False, False),
    ],
    "a cancelled job runs no more": [
        (1, False, True),
        State.CANCELLED,
        (1, True, False),
        (2, False, False),
    ],
}


def _delivery(message_id: str) -> Change:
    at = now()
    return Change(message_id, "tests.claim", "tests", State.RUNNING, at, started_at=at)


def _left(message_id: str, state: State) -> None:
    with session_scope() as s:
        s.execute(
            update(LedgerEntry).where(LedgerEntry.message_id == message_id).values(state=state)
        )


@pytest.mark.parametrize("steps", CASES.values(), ids=CASES.keys())
def test_a_delivery_runs_only_when_its_attempt_is_new_or_its_run_crashed(clean, steps):
    message_id = str(uuid.uuid4())
    runs = 0
    for step in steps:
        if isinstance(step, State):
            _left(message_id, step)
            continue
        attempt, redelivered, may_run = step
        assert store.claim(_delivery(message_id), attempt, redelivered) is may_run, step
        runs += may_run
    row = entry(message_id)
    assert row is not None and row.attempts == runs  # attempts counts runs, as before
