"""Stranded work: committed sends that never reached a queue, and jobs no queue holds.

Every send is in the ledger from its commit (``enqueued``, or ``scheduled`` with its due time
when held in PostgreSQL), so "lost" is measurable:

- *unpublished*: an outbox row due (or, without a due time, committed) more than N seconds
  ago and still there: no relay is publishing (all down, or the broker refuses).
- *lost*: a ledger row ``scheduled``, ``enqueued`` or ``retrying`` whose due time passed more
  than N seconds ago, with no outbox row, whose message is in no queue and held by no worker
  (``jobcore.ledger.lost``): the message is gone, and nothing will run the job.
  The shop re-drives the orders such jobs strand (``shop.orders.redrive``).

A ``scheduled`` row not yet due is neither: it waits in the outbox by design. Once overdue by
N seconds it is *unpublished* (its outbox row is still there) or *lost* (it is not).

The application adds its own kind (the shop: orders not settled with no pending job) through
``CheckFn``s the entry point passes in.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from jobcore.ledger.states import WAITING, sql_list

_WAITING = sql_list(WAITING)

UNPUBLISHED_SQL = """
SELECT message_id, queue, EXTRACT(EPOCH FROM now() - COALESCE(due_at, created_at)) AS age_s
FROM outbox
WHERE COALESCE(due_at, created_at) < now() - make_interval(secs => :older_than_s)
ORDER BY age_s DESC
LIMIT :limit
"""
# due = the retry's or the delay's ETA, else when it was enqueued or last changed
WAITING_SQL = f"""
SELECT j.message_id, j.actor, j.queue, j.state, j.order_id,
    EXTRACT(EPOCH FROM now() - COALESCE(j.eta, j.enqueued_at, j.state_changed_at)) AS age_s
FROM job_ledger j
WHERE j.state IN {_WAITING}
  AND COALESCE(j.eta, j.enqueued_at, j.state_changed_at) < now() - make_interval(secs => :older_than_s)
  AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.message_id = j.message_id)
ORDER BY age_s DESC
LIMIT :limit
"""

# the same, counted for the scrape-time metric ``shopjobs_stranded{kind}`` (psycopg2 style)
UNPUBLISHED_COUNT_SQL = """
SELECT count(*) FROM outbox
WHERE COALESCE(due_at, created_at) < now() - make_interval(secs => %(older_than_s)s)
"""

# the application's own check: (session, older_than_s) -> rows (dicts) of stranded things
CheckFn = Callable[[Session, float], list[dict[str, Any]]]


@dataclasses.dataclass
class Stranded:
    """What is stranded, by kind (``unpublished``, ``lost`` and the application's kinds)."""

    kinds: dict[str, list[dict[str, Any]]]

    @property
    def counts(self) -> dict[str, int]:
        return {kind: len(rows) for kind, rows in self.kinds.items()}

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def find(
    session: Session,
    older_than_s: float,
    *,
    lost: set[str] | None = None,
    checks: Mapping[str, CheckFn] | None = None,
    limit: int = 1000,
) -> Stranded:
    """Everything stranded for longer than ``older_than_s``.

    ``lost``: the ids ``jobcore.ledger.lost.lost_ids`` found; a waiting row past due and
    published counts as lost only when its id is in it (without it, every such row counts).
    """
    params = {"older_than_s": older_than_s, "limit": limit}
    unpublished = [dict(r._mapping) for r in session.execute(text(UNPUBLISHED_SQL), params)]
    waiting = [dict(r._mapping) for r in session.execute(text(WAITING_SQL), params)]
    if lost is not None:
        waiting = [r for r in waiting if r["message_id"] in lost]
    kinds: dict[str, list[dict[str, Any]]] = {"unpublished": unpublished, "lost": waiting}
    for kind, check in (checks or {}).items():
        kinds[kind] = check(session, older_than_s)
    for rows in kinds.values():
        for row in rows:
            if row.get("age_s") is not None:
                row["age_s"] = round(float(row["age_s"]), 1)
    return Stranded(kinds)
