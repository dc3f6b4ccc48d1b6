"""The few ledger reads and writes the consumer and the middleware must make synchronously.

Everything else reaches the ledger through the batched ``LedgerWriter``; these are the cases
where a decision depends on the answer now: a duplicate's claim, a redelivery after a crash, a
message handed back unstarted, a body nobody can decode.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select

from jobcore import db
from jobcore.ledger.states import FINAL, WAITING, State, sql_list
from jobcore.ledger.writer import COLUMNS, WORKER_NAME, Change
from jobcore.models import LedgerEntry

logger = logging.getLogger("shopjobs.ledger")


@contextlib.contextmanager
def _transaction() -> Iterator[Any]:
    """A cursor on a pooled raw connection: plain SQL, one round trip, committed on success.

    Raw psycopg rather than a Session because these statements sit on every delivery's path.
    Closing hands the connection back to the pool, which rolls back what was not committed.
    """
    conn = db.get_engine().raw_connection()
    try:
        with contextlib.closing(conn.cursor()) as cur:
            yield cur
        conn.commit()
    finally:
        conn.close()


def already_finished(message_id: str) -> bool:
    with db.get_engine().connect() as conn:
        state = conn.scalar(select(LedgerEntry.state).where(LedgerEntry.message_id == message_id))
    return state in FINAL


_CLAIM = f"""
INSERT INTO job_ledger AS j (message_id, actor, queue, state, state_changed_at, args, attempts,
    last_attempt, enqueued_at, started_at, order_id, user_id, job_id, worker)
VALUES (%(message_id)s, %(actor)s, %(queue)s, '{State.RUNNING}', to_timestamp(%(state_ts)s),
    %(args)s::jsonb, 1, %(attempt)s, to_timestamp(%(enqueued_at)s), to_timestamp(%(state_ts)s),
    %(order_id)s, %(user_id)s, %(job_id)s, %(worker)s)
ON CONFLICT (message_id) DO UPDATE SET
  state = '{State.RUNNING}', state_changed_at = EXCLUDED.state_changed_at,
  attempts = j.attempts + 1, last_attempt = EXCLUDED.last_attempt,
  started_at = EXCLUDED.started_at, worker = EXCLUDED.worker,
  args = COALESCE(j.args, EXCLUDED.args), enqueued_at = LEAST(j.enqueued_at, EXCLUDED.enqueued_at),
  order_id = COALESCE(j.order_id, EXCLUDED.order_id),
  user_id = COALESCE(j.user_id, EXCLUDED.user_id),
  job_id = COALESCE(j.job_id, EXCLUDED.job_id)
WHERE j.state NOT IN {sql_list(FINAL)}
  AND (j.last_attempt < %(attempt)s OR (%(redelivered)s AND j.last_attempt = %(attempt)s))
RETURNING 1
"""


def claim(change: Change, attempt: int, redelivered: bool) -> bool:
    """Record 'running' synchronously, unless this delivery duplicates one already started.

    ``attempt`` is the delivery's attempt number (its retries + 1). A delivery may run when no
    worker has claimed that attempt yet (a first run, or a retry), or when the broker
    redelivered it after the crash of the run that claimed it. A second copy of a claimed
    attempt (published twice, or the retry both copies of a redelivered run sent), a copy of an
    older attempt and any copy of a finished or cancelled job are skipped. The attempt is
    compared, not ``attempts``: that counts runs, and after a crash's redelivery it is one
    ahead of the attempt number, which made the job's next retry look like a duplicate (a lost
    job: 'retrying' for ever, its retry skipped).
    """
    params = {name: getattr(change, name) for name in COLUMNS}
    params.update(attempt=attempt, redelivered=redelivered)
    params["worker"] = params["worker"] or WORKER_NAME.format(pid=os.getpid())
    with _transaction() as cur:
        cur.execute(_CLAIM, params)
        return cur.fetchone() is not None


class Redelivery(enum.Enum):
    HANDED_BACK = "handed back"  # a worker returned it unstarted (shutdown, lost connection)
    SUSPECT = "suspect"  # its worker died; it must run alone to tell culprit from bystander
    CULPRIT = "culprit"  # its worker died during LONE_DEATHS of its lone runs: it kills workers


# A culprit died alone this many times. One lone death is not enough: a process killed from
# outside (an operator's kill -9, the OOM killer choosing it for its neighbour's memory, a
# deploy) while an innocent suspect ran alone looks the same, and parked innocents strand
# orders (the soak's T23 parked 4 with 1). Two lone deaths in a row of the same message are
# its own doing; it costs a real culprit one more run.
LONE_DEATHS = 2

_UNFINISHED = sql_list(WAITING | {State.RUNNING})
_WAITING = sql_list(WAITING)
# One statement: consume a hand-back marker, record this delivery's start in the ledger (a
# crash counts when the ledger shows the last delivery running), and read whether a lone run of
# this message was under way when its worker died, and how many of its lone runs died.
_REDELIVERED = f"""
WITH marker AS (DELETE FROM requeued_messages WHERE message_id = %(id)s RETURNING 1),
suspect AS (
  SELECT running_since, lone_runs FROM crash_suspects WHERE message_id = %(id)s FOR UPDATE
),
ledger AS (
  INSERT INTO job_ledger AS j (message_id, actor, queue, state, state_changed_at, attempts,
      redeliveries)
  VALUES (%(id)s, %(actor)s, %(queue)s, '{State.RUNNING}', now(), 0, 0)
  ON CONFLICT (message_id) DO UPDATE SET
    redeliveries = j.redeliveries + CASE
        WHEN j.state = '{State.RUNNING}' AND NOT EXISTS (SELECT 1 FROM marker) THEN 1 ELSE 0 END,
    state = CASE WHEN j.state IN {_UNFINISHED} THEN '{State.RUNNING}' ELSE j.state END,
    state_changed_at = CASE
        WHEN j.state IN {_WAITING} THEN now() ELSE j.state_changed_at END
  RETURNING redeliveries
)
SELECT EXISTS (SELECT 1 FROM marker), (SELECT running_since IS NOT NULL FROM suspect),
    COALESCE((SELECT lone_runs FROM suspect), 0), (SELECT redeliveries FROM ledger)
"""


def classify_redelivery(message_id: str, actor: str, queue: str) -> Redelivery:
    """Why a message came back, decided in one transaction.

    Every redelivered message its worker did not hand back is a suspect (the ledger's 'running'
    is batched for most actors, so it cannot tell which ones the dead worker had started). A
    suspect whose lone run died counts that death; at ``LONE_DEATHS`` it is the culprit and its
    suspect row is removed.
    """
    params = {"id": message_id, "actor": actor, "queue": queue.removesuffix(".DQ")}
    with _transaction() as cur:
        cur.execute(_REDELIVERED, params)
        handed_back, lone_run_died, lone_deaths, _ = cur.fetchone()
        if lone_run_died and lone_deaths >= LONE_DEATHS:
            cur.execute("DELETE FROM crash_suspects WHERE message_id = %s", (message_id,))
            return Redelivery.CULPRIT
        if lone_run_died:
            # the death is counted (lone_runs); the next lone run must die too
            cur.execute(
                "UPDATE crash_suspects SET running_since = NULL WHERE message_id = %s",
                (message_id,),
            )
            return Redelivery.SUSPECT
    return Redelivery.HANDED_BACK if handed_back else Redelivery.SUSPECT


def start_lone_run(message_id: str, actor: str) -> None:
    """Record, before it runs, that this suspect runs alone now: if the process dies, the death
    counts against it (``LONE_DEATHS``)."""
    with _transaction() as cur:
        cur.execute(
            """INSERT INTO crash_suspects AS c (message_id, actor, lone_runs, running_since, worker)
               VALUES (%(id)s, %(actor)s, 1, now(), %(worker)s)
               ON CONFLICT (message_id) DO UPDATE
               SET lone_runs = c.lone_runs + 1, running_since = now(), worker = EXCLUDED.worker""",
            {"id": message_id, "actor": actor, "worker": WORKER_NAME.format(pid=os.getpid())},
        )


def end_lone_run(message_id: str) -> None:
    """The lone run ended (succeeded, failed or raised): the message did not kill its worker."""
    with _transaction() as cur:
        cur.execute("DELETE FROM crash_suspects WHERE message_id = %s", (message_id,))


def mark_handed_back(message_ids: list[str]) -> None:
    """Messages a worker returns unstarted: their redelivery is not a crash."""
    with _transaction() as cur:
        cur.execute(
            "INSERT INTO requeued_messages (message_id) SELECT unnest(%s::text[])"
            " ON CONFLICT DO NOTHING",
            (message_ids,),
        )


def store_undecodable(queue: str, body: bytes) -> None:
    from jobcore import dead_letters

    logging.getLogger("shopjobs.dead_letters").warning(
        "undecodable message in %s (%d bytes): %s", queue, len(body), dead_letters.preview(body)
    )
    from jobcore.metrics.definitions import DEAD_LETTERS

    dead_letters.record(
        queue=queue, body=body, reason="undecodable", error="not a Dramatiq message"
    )
    DEAD_LETTERS.labels(queue.removesuffix(".DQ"), "undecodable").inc()
