"""Lost jobs: ledger rows waiting to run whose message is nowhere.

A row ``scheduled``, ``enqueued`` or ``retrying`` past due by N seconds, with no outbox row (its
send was published), whose message no live worker holds (``worker_processes.held_ids``, written
with each heartbeat), is lost when either

- its queue had nothing ready (the queue and its ``.DQ``) after it was published, and every
  live worker has written its list since: the message is in no queue and in no hand, or
- (``enqueued`` rows, FIFO queues only) a job of the same queue due after it *started* before
  every live worker's last heartbeat, and more than ``OVERTAKEN_S`` ago: RabbitMQ delivers a
  queue in order, so this message was delivered before that one, and a worker holding it would
  have listed it since. This finds a dropped message while other jobs keep flowing through
  its queue, where the first rule would wait for the queue to drain (with orders flowing,
  hardly ever). With priorities configured a queue is not FIFO, and only the first rule holds.

Ready counts are read after the rows were seen published and before the workers' lists, and
those lists must be written after the ready read (``lost_ids`` waits up to ``BEATS_WAIT_S`` for
every live worker's next beat; a worker that does not beat in time turns the first rule off for
that pass): a message moving from ready to held between the reads is seen in one or the other,
and one a worker took just before the ready read is in its next list. The scrape-time gauge
cannot wait: it applies the first rule without the fresh lists, so a message taken from a queue
then empty a moment before a scrape may count as lost for that scrape. A message published
late by the relay queues behind jobs due after it. Either may be called lost for a few seconds:
the shop re-drives only steps deduped by the ledger (``shop.orders.redrive``), so such a late
copy is skipped as the duplicate of a finished job.

The ledger keeps redacted, capped arguments, not bodies, so the job itself cannot be sent again;
the application re-drives the work it stood for (the shop: the order's next pipeline step) and
closes the lost rows with ``account``, in the same transaction, so each loss is accounted for
once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from jobcore import queue_depth
from jobcore.ledger.states import OPEN, WAITING, State, sql_list
from jobcore.worker_registry import HEARTBEAT_S, STALE_S

#: ``error`` of a lost row once accounted for (``state`` dead); the re-drive's id follows it
LOST = "lost: its message was in no queue and held by no worker"

#: a job due after a waiting one started this long ago: the waiting one should be held by now
#: (two beats, so a list written just before its delivery is not the last one read)
MARGIN_S = 5.0
OVERTAKEN_S = 2 * HEARTBEAT_S + MARGIN_S
#: how long ``lost_ids`` waits for every live worker to beat after the ready read
BEATS_WAIT_S = HEARTBEAT_S + MARGIN_S

_WAITING = sql_list(WAITING)
# waiting rows past due and published (psycopg2 style, as the scrape-time metric)
PUBLISHED_SQL = f"""
SELECT j.message_id, j.queue FROM job_ledger j
WHERE j.state IN {_WAITING}
  AND COALESCE(j.eta, j.enqueued_at, j.state_changed_at)
      < now() - make_interval(secs => %(older_than_s)s)
  AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.message_id = j.message_id)
"""
# the lost rows: parameters older_than_s, empty (queues with nothing ready, read before this),
# strict (the first rule only for the rows in published, read before the ready counts, and only
# when every live worker beat after ready_at), fifo (whether the second rule holds), stale_s,
# overtaken_s, margin_s
LOST_CTE = f"""
live AS (
  SELECT held_ids, heartbeat_at FROM worker_processes
  WHERE heartbeat_at > now() - make_interval(secs => %(stale_s)s)),
held AS (SELECT DISTINCT jsonb_array_elements_text(held_ids) AS message_id FROM live),
overtaken AS (
  SELECT LEAST(now() - make_interval(secs => %(overtaken_s)s),
               (SELECT min(heartbeat_at) FROM live) - make_interval(secs => %(margin_s)s)) AS t),
waiting AS (
  SELECT j.message_id, j.queue, j.state, j.eta,
         COALESCE(j.eta, j.enqueued_at, j.state_changed_at) AS due
  FROM job_ledger j
  WHERE j.state IN {_WAITING}
    AND COALESCE(j.eta, j.enqueued_at, j.state_changed_at)
        < now() - make_interval(secs => %(older_than_s)s)
    AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.message_id = j.message_id)
    AND NOT EXISTS (SELECT 1 FROM held h WHERE h.message_id = j.message_id)),
lost AS (
  SELECT w.message_id, w.queue FROM waiting w
  WHERE (w.queue = ANY(%(empty)s)
         AND (NOT %(strict)s
              OR (w.message_id = ANY(%(published)s)
                  AND NOT EXISTS (SELECT 1 FROM live WHERE heartbeat_at <= %(ready_at)s))))
     OR (%(fifo)s AND w.state = '{State.ENQUEUED}'
         AND NOT EXISTS (SELECT 1 FROM requeued_messages r WHERE r.message_id = w.message_id)
         AND EXISTS (
           SELECT 1 FROM job_ledger k, overtaken
           WHERE k.state_changed_at > w.due AND k.queue = w.queue
             AND COALESCE(k.eta, k.enqueued_at) > w.due
             AND k.started_at > w.due AND k.started_at < overtaken.t)))
"""
BEHIND_SQL = """
SELECT count(*) FROM worker_processes
WHERE heartbeat_at > now() - make_interval(secs => %(stale_s)s) AND heartbeat_at <= %(since)s
"""
LOST_IDS_SQL = f"WITH {LOST_CTE} SELECT message_id FROM lost"
LOST_BY_QUEUE_SQL = f"WITH {LOST_CTE} SELECT queue, count(*) FROM lost GROUP BY queue"

OPEN_JOBS_SQL = f"""
SELECT j.order_id, j.message_id, j.actor, j.queue, j.state, j.args,
    EXTRACT(EPOCH FROM now() - COALESCE(j.eta, j.enqueued_at, j.state_changed_at)) AS age_s
FROM job_ledger j
WHERE j.order_id = ANY(:order_ids) AND j.state IN {sql_list(OPEN)}
ORDER BY j.order_id, j.enqueued_at, j.message_id
"""
ACCOUNT_SQL = f"""
UPDATE job_ledger
SET state = '{State.DEAD}', state_changed_at = now(), finished_at = now(), error = :error
WHERE message_id = ANY(:message_ids) AND state IN {_WAITING}
RETURNING message_id
"""


def params(
    older_than_s: float,
    empty: Sequence[str],
    fifo: bool,
    published: Sequence[str] | None = None,
    ready_at: dt.datetime | None = None,
) -> dict[str, Any]:
    """The parameters of ``LOST_CTE``: ``empty`` are the queues with nothing ready; without
    ``published`` and ``ready_at`` (the gauge) the first rule does not ask for fresh lists."""
    strict = published is not None and ready_at is not None
    return {
        "older_than_s": older_than_s,
        "empty": list(empty),
        "strict": strict,
        "published": list(published or ()),
        "ready_at": ready_at if ready_at is not None else dt.datetime.now(dt.UTC),
        "fifo": fifo,
        "stale_s": STALE_S,
        "overtaken_s": OVERTAKEN_S,
        "margin_s": MARGIN_S,
    }


def lost_ids(session: Session, amqp_url: str, older_than_s: float, *, fifo: bool) -> set[str]:
    """The ids of the jobs lost for over ``older_than_s`` seconds.

    ``fifo``: the queues deliver in order (no priorities configured). RabbitMQ that cannot be
    reached raises: nothing is called lost on a guess.
    """
    conn = session.connection()
    published: dict[str, str] = dict(
        conn.exec_driver_sql(PUBLISHED_SQL, {"older_than_s": older_than_s}).all()
    )
    if not published:
        return set()
    ready = queue_depth.ready(amqp_url, sorted(set(published.values())))  # see the module's doc
    ready_at = conn.exec_driver_sql("SELECT now()").scalar_one()
    empty = [q for q, n in ready.items() if n == 0]
    if empty:
        _wait_for_beats(conn, ready_at)
    found = conn.exec_driver_sql(
        LOST_IDS_SQL, params(older_than_s, empty, fifo, list(published), ready_at)
    )
    return {message_id for (message_id,) in found}


def _wait_for_beats(conn: Any, since: dt.datetime) -> None:
    """Until every live worker has beaten after ``since`` (its list is newer), or for
    ``BEATS_WAIT_S``. Each poll runs in its own statement (READ COMMITTED sees new beats)."""
    deadline = time.monotonic() + BEATS_WAIT_S
    while time.monotonic() < deadline:
        behind = conn.exec_driver_sql(BEHIND_SQL, {"stale_s": STALE_S, "since": since}).scalar()
        if not behind:
            return
        time.sleep(0.25)


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
    session: Session, order_ids: Sequence[int], lost: set[str]
) -> dict[int, list[OpenJob]]:
    """The unfinished jobs of each order, each marked lost when its id is in ``lost``."""
    found: dict[int, list[OpenJob]] = {}
    rows = session.execute(text(OPEN_JOBS_SQL), {"order_ids": list(order_ids)})
    for row in rows:
        job = OpenJob(
            row.order_id,
            row.message_id,
            row.actor,
            row.queue,
            row.state,
            round(float(row.age_s or 0.0), 1),
            row.args,
            row.message_id in lost,
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
