"""Which state wins when two changes of one job meet: the rule, once, for SQL and for Python.

Changes reach a row out of order: a producer stamps ``enqueued`` after the broker's confirm,
which can come after a fast worker finished the job; a duplicate delivery reports ``skipped``
after the original succeeded; a run whose connection died reports ``retrying`` after its
redelivered copy succeeded elsewhere; a run that began before an operator's cancel landed ends later.
The writer merges changes in memory (``Change.absorb``) and in the upsert's ``CASE``; both are
generated here from ``verdict``, so they cannot drift apart
(tests/integration/test_ledger_precedence.py runs every pair of states through both).
"""

from __future__ import annotations

import enum
import itertools

from jobcore.ledger.states import State, sql_list


class Verdict(enum.Enum):
    """What an incoming change does to the state a row holds."""

    KEEP = "keep"  # the incoming state never replaces the current one
    TAKE = "take"  # it replaces it whatever the time stamps say
    LATEST = "latest"  # the later stamp wins; a tie goes to the incoming change


#: States of a row no worker has seen yet: whatever happens to the job replaces them.
NOT_STARTED = frozenset({State.SCHEDULED, State.ENQUEUED})

#: States that still replace ``cancelled``: a run that started before the cancel landed
#: reports its real outcome; anything else (running, skipped, enqueued) leaves it cancelled.
OUTCOMES_AFTER_CANCEL = frozenset({State.SUCCEEDED, State.FAILED, State.DEAD, State.RETRYING})


def verdict(current: State, incoming: State) -> Verdict:
    """The rule itself; everything else in this module is derived from it."""
    if incoming is State.SCHEDULED:
        return Verdict.KEEP  # only ever the first state of a row (a held send's commit)
    if incoming is State.ENQUEUED:
        # the producer's late stamp never sends a job back; a held send's publish moves it on
        return Verdict.TAKE if current is State.SCHEDULED else Verdict.KEEP
    if current is State.SUCCEEDED and incoming is State.RETRYING:
        # a succeeded job is never retried: this is a copy that ran beside the one that
        # succeeded (its connection died, the message was redelivered) committing late
        return Verdict.KEEP
    if current is State.CANCELLED and incoming not in OUTCOMES_AFTER_CANCEL:
        return Verdict.KEEP
    if incoming is State.SKIPPED and current not in NOT_STARTED:
        return Verdict.KEEP  # a duplicate is counted; it never hides the outcome
    if current in NOT_STARTED:
        return Verdict.TAKE
    return Verdict.LATEST


#: Every ordered pair, computed once: the in-memory merge is a dict lookup on the hot path.
TABLE: dict[tuple[str, str], Verdict] = {
    (current, incoming): verdict(current, incoming)
    for current, incoming in itertools.product(State, State)
}


def takes(current: str, current_ts: float, incoming: str, incoming_ts: float) -> bool:
    """True when the incoming change's state replaces the current one (the in-memory merge).

    A state outside the enum never wins, as in SQL (the database refuses such a row anyway).
    """
    rule = TABLE.get((current, incoming), Verdict.KEEP)
    return rule is Verdict.TAKE or (rule is Verdict.LATEST and incoming_ts >= current_ts)


def sql_takes(current: str, incoming: str) -> str:
    """The same decision as a SQL boolean over two row aliases with ``state`` and
    ``state_changed_at`` columns (e.g. ``j`` and ``EXCLUDED`` in an upsert)."""
    branches = []
    for new in State:
        taken = frozenset(old for old in State if TABLE[old, new] is Verdict.TAKE)
        latest = frozenset(old for old in State if TABLE[old, new] is Verdict.LATEST)
        tests = []
        if taken:
            tests.append(f"{current}.state IN {sql_list(taken)}")
        if latest:
            tests.append(
                f"({current}.state IN {sql_list(latest)}"
                f" AND {incoming}.state_changed_at >= {current}.state_changed_at)"
            )
        if tests:
            branches.append(f"WHEN '{new}' THEN " + " OR ".join(tests))
    return f"CASE {incoming}.state " + " ".join(branches) + " ELSE false END"
