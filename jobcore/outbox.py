"""Enqueue atomically with the business write (transactional outbox).

``enqueue(session, actor, ...)`` writes an outbox row and the job's ledger row in the caller's
transaction. After COMMIT the message is published and its outbox row deleted; on rollback
nothing is published. A publish that fails after commit (broker down, process killed) leaves
the row, and ``relay_pending`` publishes it later, so nothing is lost; a message may then
arrive twice, which consumers tolerate (they are idempotent).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

import dramatiq
from dramatiq import Message
from sqlalchemy import delete, event, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from jobcore import routing
from jobcore import unique as uniqueness
from jobcore.db import get_engine
from jobcore.ledger.args import ledger_fields
from jobcore.ledger.states import State
from jobcore.models import LedgerEntry, OutboxMessage
from jobcore.sends import LEDGER_RECORDED_OPTION, bypass, checked_body

logger = logging.getLogger(__name__)

_PENDING_KEY = "shopjobs.outbox"
# a delay longer than this is held in the outbox by the database clock (see jobcore.sends);
# the entry point sets it from its settings
delay_in_db_after_ms = 30_000
__all__ = ["LEDGER_RECORDED_OPTION", "enqueue", "publish", "relay_pending"]


def _message(
    actor: dramatiq.Actor[Any, Any] | str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    options: dict[str, Any],
) -> tuple[Message[Any], dramatiq.Actor[Any, Any] | None]:
    """The message for ``actor`` (an actor or its name) and the actor when this process has it.

    A name is looked up in the installed routing table; a name the table lacks (an actor a
    test or a tool declares itself) falls back to the broker's declared actors.
    """
    if not isinstance(actor, str):
        return actor.message_with_options(args=args, kwargs=kwargs, **options), actor
    declared = routing.declared_actor(actor)
    try:
        message = routing.routes().message(actor, args, kwargs, **options)
    except (routing.UnknownActor, RuntimeError):
        if declared is None:
            raise
        message = declared.message_with_options(args=args, kwargs=kwargs, **options)
    return message, declared


def enqueue(
    session: Session,
    actor: dramatiq.Actor[Any, Any] | str,
    *args: Any,
    delay_ms: int | None = None,
    options: dict[str, Any] | None = None,
    message_id: str | None = None,
    unique_key: str | None = None,
    unique_for: int | None = None,
    on_duplicate: str = "return",
    **kwargs: Any,
) -> str:
    """Send ``actor(*args, **kwargs)`` once the session's transaction commits; returns the message id.

    ``actor`` is an actor or its name (``"orders.check_delivery"``): code below the actors
    sends by name through the routing table (``jobcore.routing``).

    ``message_id`` replaces Dramatiq's random id with a derived one (the scheduler's
    ``(schedule, fire time)`` id), since ``message_with_options`` has no way to set it.

    ``unique_key`` (with ``unique_for`` ms, an hour by default) claims the key in this
    transaction (``jobcore.unique``): while another job holds it, nothing is written and the
    holder's message id is returned, or ``DuplicateJob`` raised with ``on_duplicate="refuse"``.
    """
    opts = dict(options or {})
    opts[LEDGER_RECORDED_OPTION] = True
    if unique_key is not None or unique_for is not None:
        opts.update(
            {
                uniqueness.KEY_OPTION: unique_key,
                uniqueness.FOR_OPTION: unique_for,
                uniqueness.ON_DUPLICATE_OPTION: on_duplicate,
            }
        )
    unique = uniqueness.Unique.of(opts)  # bad options fail here, before anything is written
    message, declared = _message(actor, args, kwargs, opts)
    if message_id is not None:
        message = message.copy(message_id=message_id)
    body = checked_body(message)  # before anything is written
    if unique is not None:
        cursor = session.connection().connection.cursor()
        try:
            holder = uniqueness.claim(cursor, [(unique, message.message_id)])[message.message_id]
        finally:
            cursor.close()
        if holder != message.message_id:
            if unique.refuse:
                raise uniqueness.DuplicateJob(unique.key, holder)
            return holder
    now = dt.datetime.now(dt.UTC)
    fields = ledger_fields(declared, message)
    fields["args"] = json.loads(fields["args"])
    held = delay_ms is not None and delay_ms > delay_in_db_after_ms
    # held: due by the database clock, published by the relay (never after commit)
    due_at = func.now() + dt.timedelta(milliseconds=delay_ms or 0) if held else None
    session.execute(
        insert(LedgerEntry)
        .values(
            message_id=message.message_id,
            actor=message.actor_name,
            queue=message.queue_name,
            state=State.SCHEDULED if held else State.ENQUEUED,
            state_changed_at=now,
            enqueued_at=now,
            eta=due_at if held else now + dt.timedelta(milliseconds=delay_ms) if delay_ms else None,
            attempts=0,
            **fields,
        )
        .on_conflict_do_nothing(index_elements=["message_id"])
    )
    session.add(
        OutboxMessage(
            message_id=message.message_id,
            queue=message.queue_name,
            body=body,
            delay_ms=None if held else delay_ms,
            due_at=due_at,
        )
    )
    if not held:
        session.info.setdefault(_PENDING_KEY, []).append((message, delay_ms))
    return message.message_id


@event.listens_for(Session, "after_commit")
def _publish_after_commit(session: Session) -> None:
    pending = session.info.pop(_PENDING_KEY, None)
    if pending:
        publish(pending)


@event.listens_for(Session, "after_rollback")
def _discard_on_rollback(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)


def publish(pending: list[tuple[Message[Any], int | None]]) -> int:
    """Publish committed outbox messages and delete their rows; failures stay for the relay."""
    broker = dramatiq.get_broker()
    sent: list[str] = []
    failed: list[str] = []
    for message, delay_ms in pending:
        try:
            with bypass():  # already durable: published now even inside a job
                broker.enqueue(message, delay=delay_ms)
        except Exception:
            logger.warning(
                "publish of message %r failed; the outbox relay will retry it",
                message.message_id,
                exc_info=True,
            )
            failed.append(message.message_id)
            continue
        sent.append(message.message_id)
    if failed:
        _hand_to_relays(failed)
    if sent:
        try:
            with get_engine().begin() as conn:
                conn.execute(delete(OutboxMessage).where(OutboxMessage.message_id.in_(sent)))
        except Exception:
            # published but still in the outbox: the relay may publish again (consumers dedupe)
            logger.warning("could not delete %d published outbox rows", len(sent), exc_info=True)
    return len(sent)


def _hand_to_relays(message_ids: list[str]) -> None:
    """Make rows whose publish failed due now, so the relays retry them on their next round.

    Left alone, a row waits until it is a straggler (``SHOPJOBS_OUTBOX_RELAY_AFTER_S``, 30 s):
    every order taken while RabbitMQ was down would then start that long after it came back.
    """
    try:
        with get_engine().begin() as conn:
            conn.execute(
                update(OutboxMessage)
                .where(OutboxMessage.message_id.in_(message_ids), OutboxMessage.due_at.is_(None))
                .values(due_at=func.now())
            )
    except SQLAlchemyError:
        # the database is away too: the rows stay stragglers, which the relays take later
        logger.warning("could not hand %d outbox rows to the relays", len(message_ids))


def relay_pending(older_than_s: float, batch: int = 500) -> int:
    """Publish outbox rows older than ``older_than_s`` seconds (what an after-commit publish missed)."""
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=older_than_s)
    broker = dramatiq.get_broker()
    total = 0
    while True:
        with get_engine().begin() as conn:
            rows = conn.execute(
                select(OutboxMessage.id, OutboxMessage.body, OutboxMessage.delay_ms)
                .where(OutboxMessage.created_at < cutoff, OutboxMessage.due_at.is_(None))
                .order_by(OutboxMessage.id)
                .limit(batch)
                .with_for_update(skip_locked=True)
            ).all()
            if not rows:
                return total
            for row in rows:
                message = Message.decode(row.body)
                with bypass():
                    broker.enqueue(message, delay=row.delay_ms)
            conn.execute(delete(OutboxMessage).where(OutboxMessage.id.in_([r.id for r in rows])))
            total += len(rows)
            logger.info("outbox relay published %d messages", len(rows))
