"""The few ledger reads and writes the consumer and the middleware must make synchronously.

Everything else reaches the ledger through the batched ``LedgerWriter``; these are the cases
where a decision depends on the answer now: a duplicate's claim, a redelivery after a crash, a
message handed back unstarted, a body nobody can decode.
"""

from __future__ import annotations

import enum
import logging
import os

from sqlalchemy import select

from jobcore import db
from jobcore.ledger.writer import WORKER_NAME, Change, claim_delivery
from jobcore.models import FINAL_STATES, LedgerEntry

logger = logging.getLogger("shopjobs.ledger")


def already_finished(message_id: str) -> bool:
    with db.get_engine().connect() as conn:
        state = conn.scalar(select(LedgerEntry.state).where(LedgerEntry.message_id == message_id))
    return state in FINAL_STATES


def claim(change: Change, attempt: int, redelivered: bool) -> bool:
    conn = db.get_engine().raw_connection()
    try:
        return claim_delivery(conn, change, attempt, redelivered)
    finally:
        conn.close()


class Redelivery(enum.Enum):
    HANDED_BACK = "handed back"  # a worker returned it unstarted (shutdown, lost connection)
    SUSPECT = "suspect"  # its worker died; it must run alone to tell culprit from bystander
    CULPRIT = "culprit"  # its worker died while it ran alone: it is what kills workers


# One statement: consume a hand-back marker, record this delivery's start in the ledger (a
# crash counts when the ledger shows the last delivery running), and read whether a lone run of
# this message was under way when its worker died.
_REDELIVERED = """
WITH marker AS (DELETE FROM requeued_messages WHERE message_id = %(id)s RETURNING 1),
suspect AS (SELECT running_since FROM crash_suspects WHERE message_id = %(id)s FOR UPDATE),
ledger AS (
  INSERT INTO job_ledger AS j (message_id, actor, queue, state, state_changed_at, attempts, redeliveries)
  VALUES (%(id)s, %(actor)s, %(queue)s, 'running', now(), 0, 0)
  ON CONFLICT (message_id) DO UPDATE SET
    redeliveries = j.redeliveries
        + CASE WHEN j.state = 'running' AND NOT EXISTS (SELECT 1 FROM marker) THEN 1 ELSE 0 END,
    state = CASE WHEN j.state IN ('enqueued', 'retrying', 'running') THEN 'running' ELSE j.state END,
    state_changed_at = CASE WHEN j.state IN ('enqueued', 'retrying') THEN now() ELSE j.state_changed_at END
  RETURNING redeliveries
)
SELECT EXISTS (SELECT 1 FROM marker), (SELECT running_since IS NOT NULL FROM suspect), (SELECT redeliveries FROM ledger)
"""


def classify_redelivery(message_id: str, actor: str, queue: str) -> Redelivery:
    """Why a message came back, decided in one transaction; a culprit's suspect row is removed."""
    conn = db.get_engine().raw_connection()
    try:
        with conn.cursor() as cur:
            cur.execute(_REDELIVERED, {"id": message_id, "actor": actor, "queue": queue.removesuffix(".DQ")})
            handed_back, lone_run_died, _ = cur.fetchone()
            if lone_run_died:
                cur.execute("DELETE FROM crash_suspects WHERE message_id = %s", (message_id,))
        conn.commit()
    finally:
        conn.close()
    if lone_run_died:
        return Redelivery.CULPRIT
    return Redelivery.HANDED_BACK if handed_back else Redelivery.SUSPECT


def start_lone_run(message_id: str, actor: str) -> None:
    """Record, before it runs, that this suspect runs alone now: if the process dies, it did it."""
    conn = db.get_engine().raw_connection()
    try:
        with conn.cursor() as cur:
            cur.execute(
                """INSERT INTO crash_suspects AS c (message_id, actor, lone_runs, running_since, worker)
                   VALUES (%(id)s, %(actor)s, 1, now(), %(worker)s)
                   ON CONFLICT (message_id) DO UPDATE
                   SET lone_runs = c.lone_runs + 1, running_since = now(), worker = EXCLUDED.worker""",
                {"id": message_id, "actor": actor, "worker": WORKER_NAME.format(pid=os.getpid())},
            )
        conn.commit()
    finally:
        conn.close()


def end_lone_run(message_id: str) -> None:
    """The lone run ended (succeeded, failed or raised): the message did not kill its worker."""
    conn = db.get_engine().raw_connection()
    try:
        with conn.cursor() as cur:
            cur.execute("DELETE FROM crash_suspects WHERE message_id = %s", (message_id,))
        conn.commit()
    finally:
        conn.close()


def mark_handed_back(message_ids: list[str]) -> None:
    """Messages a worker returns unstarted: their redelivery is not a crash."""
    conn = db.get_engine().raw_connection()
    try:
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO requeued_messages (message_id) SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING",
                (message_ids,),
            )
        conn.commit()
    finally:
        conn.close()


def store_undecodable(queue: str, body: bytes) -> None:
    from jobcore import dead_letters

    logging.getLogger("shopjobs.dead_letters").warning(
        "undecodable message in %s (%d bytes): %s", queue, len(body), dead_letters.preview(body))
    from jobcore.metrics.definitions import DEAD_LETTERS

    dead_letters.record(queue=queue, body=body, reason="undecodable", error="not a Dramatiq message")
    DEAD_LETTERS.labels(queue.removesuffix(".DQ"), "undecodable").inc()
