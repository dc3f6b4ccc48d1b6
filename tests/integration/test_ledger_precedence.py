"""The ledger's precedence rule, in memory and in PostgreSQL, for every ordered pair of states.

The writer merges two changes of one job either in memory (both wait in the same batch) or in
the upsert (the first is already written). Both come from jobcore.ledger.precedence; this test
proves they decide alike: every pair (a, b), with b stamped later, at the same time or earlier.
"""

from __future__ import annotations

import itertools
import os
import uuid

import psycopg2
import pytest

from jobcore.ledger.states import State
from jobcore.ledger.writer import Change, LedgerWriter, connect_psycopg

T0 = 1_700_000_000.0  # a whole second: to_timestamp keeps it exactly
STAMPS = {"later": 1.0, "same": 0.0, "earlier": -1.0}
CASES = list(itertools.product(State, State, STAMPS))


def _dsn() -> str:
    return os.environ["SHOPJOBS_DATABASE_URL"].replace("+psycopg2", "")


def _change(message_id: str, state: State, at: float) -> Change:
    return Change(message_id, "tests.precedence", "tests", state, at)


def _in_memory(first: State, second: State, when: str) -> tuple[str, float]:
    merged = _change("m", first, T0)
    merged.absorb(_change("m", second, T0 + STAMPS[when]))
    return merged.state, merged.state_ts


def _in_sql() -> dict[tuple[State, State, str], tuple[str, float]]:
    """Every case as its own row: the first state written and committed, then the second."""
    ids = {case: str(uuid.uuid4()) for case in CASES}
    writer = LedgerWriter(connect_psycopg(_dsn()), flush_ms=20)
    try:
        for step in (0, 1):  # two rounds, each committed, so the second merges in SQL
            ticket = 0
            for case, message_id in ids.items():
                at = T0 if step == 0 else T0 + STAMPS[case[2]]
                ticket = writer.record(_change(message_id, case[step], at), urgent=True)
            writer.wait_durable(ticket)
            assert writer.dropped == 0
    finally:
        writer.close()
    with psycopg2.connect(_dsn()) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT message_id, state, extract(epoch FROM state_changed_at)::float8"
            " FROM job_ledger WHERE message_id = ANY(%s)",
            (list(ids.values()),),
        )
        rows = {message_id: (state, at) for message_id, state, at in cur.fetchall()}
    return {case: rows[message_id] for case, message_id in ids.items()}


def test_every_ordered_pair_of_states_merges_alike_in_memory_and_in_sql(clean):
    # Given one ledger row per (first state, second state, stamp order): 9 x 9 x 3 cases
    assert len(CASES) == 243

    # When the second change reaches the committed row through the upsert
    in_sql = _in_sql()

    # Then the database holds the state and stamp the in-memory merge computes, every time
    disagreements = [
        (a.value, b.value, when, in_sql[a, b, when], _in_memory(a, b, when))
        for a, b, when in CASES
        if in_sql[a, b, when] != _in_memory(a, b, when)
    ]
    assert disagreements == []


@pytest.mark.parametrize(
    ("first", "second", "when", "expected"),
    [
        # the producer's late 'enqueued' never sends a finished job back
        (State.SUCCEEDED, State.ENQUEUED, "later", State.SUCCEEDED),
        # a duplicate's 'skipped' is counted but never hides the outcome
        (State.SUCCEEDED, State.SKIPPED, "later", State.SUCCEEDED),
        (State.ENQUEUED, State.SKIPPED, "earlier", State.SKIPPED),
        # a copy that ran beside the redelivery that succeeded (its connection died) commits
        # 'retrying' late: the success stays, so the retry it sent is skipped as a duplicate
        (State.SUCCEEDED, State.RETRYING, "later", State.SUCCEEDED),
        (State.RETRYING, State.SUCCEEDED, "later", State.SUCCEEDED),
        # a cancelled job stays cancelled unless a run that began before it reports an outcome
        (State.CANCELLED, State.RUNNING, "later", State.CANCELLED),
        (State.CANCELLED, State.SKIPPED, "later", State.CANCELLED),
        (State.CANCELLED, State.SUCCEEDED, "later", State.SUCCEEDED),
        (State.CANCELLED, State.RETRYING, "later", State.RETRYING),
        # 'enqueued' yields whatever the stamps say (the broker's confirm can come last)
        (State.ENQUEUED, State.RUNNING, "earlier", State.RUNNING),
        # a held send is 'scheduled' until published; then anything moves it on, never back
        (State.SCHEDULED, State.ENQUEUED, "later", State.ENQUEUED),
        (State.SCHEDULED, State.RUNNING, "earlier", State.RUNNING),
        (State.SCHEDULED, State.SKIPPED, "earlier", State.SKIPPED),
        (State.SCHEDULED, State.CANCELLED, "earlier", State.CANCELLED),
        (State.ENQUEUED, State.SCHEDULED, "later", State.ENQUEUED),
        (State.RUNNING, State.SCHEDULED, "later", State.RUNNING),
        # otherwise the later stamp wins, a tie going to the newer change
        (State.SUCCEEDED, State.RUNNING, "earlier", State.SUCCEEDED),
        (State.RUNNING, State.SUCCEEDED, "same", State.SUCCEEDED),
    ],
)
def test_the_rule_says_what_the_ledger_promises(first, second, when, expected):
    assert _in_memory(first, second, when)[0] == expected
