"""Lost jobs of an order: ledger rows waiting to run whose message is nowhere.

A row ``scheduled``, ``enqueued`` or ``retrying`` past due by N seconds, with no outbox row (its
send was published), while its queue holds no message at all, ready or held by a worker
(``jobcore.queue_depth``): RabbitMQ dropped it (the queue was deleted or purged) and nothing
will run the job. The ledger keeps redacted, capped arguments, not bodies, so the job itself
cannot be sent again; the application re-drives the work it stood for (the shop: the order's
next pipeline step) and closes the lost rows with ``account``, in the same transaction, so each
loss is accounted for once and a late copy of the message, should one turn up, is skipped as
the duplicate of a finished job.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from jobcore.ledger.states import WAITING, State, sql_list

#: ``error`` of a lost row once accounted for (``state`` dead); the re-drive's id follows it
LOST = "lost: its message was in no queue and held by no worker"

_OPEN = sql_list(WAITING | {State.RUNNING})
OPEN_JOBS_SQL = f"""
SELECT j.order_id, j.message_id, j.actor, j.queue, j.state, j.args,
    EXTRACT(EPOCH FROM now() - COALESCE(j.eta, j.enqueued_at, j.state_changed_at)) AS age_s,
    EXISTS (SELECT 1 FROM outbox o WHERE o.message_id = j.message_id) AS in_outbox
FROM job_ledger j
WHERE j.order_id = ANY(:order_ids) AND j.state IN {_OPEN}
ORDER BY j.order_id, j.enqueued_at, j.message_id
"""
ACCOUNT_SQL = f"""
UPDATE job_ledger
SET state = '{State.DEAD}', state_changed_at = now(), finished_at = now(), error = :error
WHERE message_id = ANY(:message_ids) AND state IN {sql_list(WAITING)}
RETURNING message_id
"""


@dataclasses.dataclass(frozen=True)
class OpenJob:
    """A job of an order not finished yet, and whether it is lost."""

    order_id: int
    message_id: str
    actor: str
    queue: str
    state: str
    age_s: float
    args: Any
    lost: bool


def open_jobs(
    session: Session,
    order_ids: Sequence[int],
    older_than_s: float,
    depth: Callable[[str], int],
) -> dict[int, list[OpenJob]]:
    """The unfinished jobs of each order, each marked lost or not.

    ``depth(queue)`` counts the queue's messages anywhere (``jobcore.queue_depth.Depths``); it
    is asked only about queues of jobs that could be lost (overdue, not in the outbox).
    """
    found: dict[int, list[OpenJob]] = {}
    rows = session.execute(text(OPEN_JOBS_SQL), {"order_ids": list(order_ids)})
    for row in rows:
        age = float(row.age_s or 0.0)
        lost = (
            row.state in WAITING
            and age > older_than_s
            and not row.in_outbox
            and depth(row.queue) == 0
        )
        job = OpenJob(
            row.order_id,
            row.message_id,
            row.actor,
            row.queue,
            row.state,
            round(age, 1),
            row.args,
            lost,
        )
        found.setdefault(row.order_id, []).append(job)
    return found


def stranded(jobs: Sequence[OpenJob]) -> bool:
    """No job will move the order on: it has lost jobs and nothing else pending."""
    return bool(jobs) and all(job.lost for job in jobs)


def account(session: Session, message_ids: Sequence[str], redriven_as: str) -> list[str]:
    """Close lost rows as ``dead`` with why and what replaced them; returns the ids closed.

    Conditional on the rows still waiting: a row a worker claimed meanwhile (its message did
    exist) is left alone, and the caller, seeing fewer ids than it asked for, backs off.
    """
    error = f"{LOST}; re-driven as {redriven_as}"
    rows = session.execute(text(ACCOUNT_SQL), {"message_ids": list(message_ids), "error": error})
    return [r.message_id for r in rows]
