"""Recording, listing, replaying and purging dead letters (the table outlives the .XQ TTL)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from typing import Any

import dramatiq
from dramatiq import Message
from dramatiq.errors import DecodeError
from sqlalchemy import delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from jobcore.db import affected, get_engine
from jobcore.errors import InvalidInput, NotFound
from jobcore.ledger.states import State
from jobcore.models import AuditLog, DeadLetter, LedgerEntry
from jobcore.outbox import LEDGER_RECORDED_OPTION

logger = logging.getLogger(__name__)
PREVIEW_BYTES = 256
# How loud a dead letter is: an error the actor declared in ``throws=`` was expected (INFO, as
# Dramatiq's Retries logs it); expiry and a bare rejection are conditions to watch (WARNING);
# everything else is a job that failed for good, unexpectedly (ERROR).
LOG_LEVELS = {
    "permanent_error": logging.INFO,
    "business_outcome": logging.INFO,
    "age_limit": logging.WARNING,
    "rejected": logging.WARNING,
    "failed": logging.ERROR,
    "unknown_actor": logging.ERROR,
    "undecodable": logging.ERROR,
    "crashed_worker": logging.ERROR,
}
REPLAY_DROPPED_OPTIONS = ("retries", "eta", "traceback", "requeue_timestamp")


def preview(body: bytes) -> str:
    """At most 256 bytes of a body, printable, for logs."""
    return body[:PREVIEW_BYTES].decode("utf-8", "replace").replace("\n", "\\n")


def record(
    *,
    queue: str,
    body: bytes,
    reason: str,
    message_id: str | None = None,
    actor: str | None = None,
    error: str | None = None,
    traceback: str | None = None,
    attempts: int = 0,
) -> None:
    """Store one dead letter now (a short transaction of its own, before the message is rejected)."""
    with get_engine().begin() as conn:
        conn.execute(
            insert(DeadLetter).values(
                message_id=message_id,
                queue=queue.removesuffix(".DQ").removesuffix(".XQ"),
                actor=actor,
                reason=reason,
                error=error,
                traceback=traceback,
                attempts=attempts,
                body=body,
            )
        )
    logger.log(
        LOG_LEVELS.get(reason, logging.ERROR),
        "dead letter: queue=%s actor=%s message_id=%r reason=%s",
        queue,
        actor,
        message_id,
        reason,
        # as fields too: a dead letter is often logged outside the job's bound context
        extra={"queue": queue, "actor": actor, "message_id": message_id, "reason": reason},
    )


def listing(
    session: Session,
    *,
    queue: str | None = None,
    actor: str | None = None,
    reason: str | None = None,
    include_replayed: bool = False,
    limit: int = 100,
) -> list[DeadLetter]:
    query = select(DeadLetter).order_by(DeadLetter.id.desc()).limit(limit)
    if queue:
        query = query.where(DeadLetter.queue == queue)
    if actor:
        query = query.where(DeadLetter.actor == actor)
    if reason:
        query = query.where(DeadLetter.reason == reason)
    if not include_replayed:
        query = query.where(DeadLetter.replayed_at.is_(None))
    return list(session.scalars(query))


def get(session: Session, dead_letter_id: int) -> DeadLetter:
    row = session.get(DeadLetter, dead_letter_id)
    if row is None:
        raise NotFound(f"no dead letter {dead_letter_id}")
    return row


def replay(
    session: Session, row: DeadLetter, *, to_queue: str | None = None, operator: str | None = None
) -> str:
    """Publish the dead message again under a new message id, linked to the old one in the ledger;
    with ``operator``, an audit row says who (the CLI and the console both pass it)."""
    if row.replayed_at is not None:
        raise InvalidInput(f"dead letter {row.id} was already replayed as {row.replay_message_id}")
    try:
        original = Message.decode(row.body)
    except DecodeError:
        raise InvalidInput(
            f"dead letter {row.id} is not a decodable message ({row.reason}); it can only be purged"
        ) from None
    broker = dramatiq.get_broker()
    if original.actor_name not in broker.actors:
        raise InvalidInput(f"dead letter {row.id} names unknown actor {original.actor_name!r}")
    options = {k: v for k, v in original.options.items() if k not in REPLAY_DROPPED_OPTIONS}
    options["replay_of"] = original.message_id
    options[LEDGER_RECORDED_OPTION] = True  # the ledger row is written here, with its link
    new_id = str(uuid.uuid4())
    queue = to_queue or original.queue_name.removesuffix(".DQ").removesuffix(".XQ")
    message = original.copy(message_id=new_id, queue_name=queue, options=options)
    now = dt.datetime.now(dt.UTC)
    session.execute(
        pg_insert(LedgerEntry)
        .values(
            message_id=new_id,
            actor=original.actor_name,
            queue=queue,
            state=State.ENQUEUED,
            state_changed_at=now,
            enqueued_at=now,
            attempts=0,
            replay_of=original.message_id,
            args=json.loads(
                json.dumps({"args": list(original.args), "kwargs": original.kwargs}, default=str)
            ),
        )
        .on_conflict_do_update(
            index_elements=["message_id"], set_={"replay_of": original.message_id}
        )
    )
    session.execute(
        update(DeadLetter)
        .where(DeadLetter.id == row.id, DeadLetter.replayed_at.is_(None))
        .values(replayed_at=now, replay_message_id=new_id)
    )
    if operator is not None:
        session.add(
            AuditLog(
                actor=operator,
                action="dlq.replay",
                subject=f"dead letter {row.id}",
                details={
                    "dead_letter": row.id,
                    "old_message_id": original.message_id,
                    "new_message_id": new_id,
                    "to_queue": to_queue,
                },
            )
        )
    session.flush()
    broker.enqueue(message)
    return new_id


def purge(session: Session, ids: list[int], operator: str) -> int:
    """Delete dead letters for good, leaving an audit row naming who and how many."""
    count = affected(session.execute(delete(DeadLetter).where(DeadLetter.id.in_(ids))))
    session.add(
        AuditLog(
            actor=operator,
            action="dlq.purge",
            subject=f"{count} dead letters",
            details={"ids": ids[:1000]},
        )
    )
    return count


def as_dict(row: DeadLetter, *, full: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row.id,
        "message_id": row.message_id,
        "queue": row.queue,
        "actor": row.actor,
        "reason": row.reason,
        "attempts": row.attempts,
        "error": row.error,
        "created_at": row.created_at.isoformat() if row.created_at else None,
        "replayed_as": row.replay_message_id,
    }
    if full:
        out["traceback"] = row.traceback
        out["body"] = (
            preview(row.body)
            if len(row.body) <= PREVIEW_BYTES
            else preview(row.body) + f"... ({len(row.body)} bytes)"
        )
    return out
