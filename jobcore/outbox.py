"""Enqueue atomically with the business write (transactional outbox).

``enqueue(session, actor, ...)`` writes an outbox row and the job's ledger row in the caller's
transaction. After COMMIT the message is published and its outbox row deleted; on rollback
nothing is published. A publish that fails after commit (broker down, process killed) leaves
the row, and ``relay_pending`` publishes it later, so nothing is lost; a message may then
arrive twice, which consumers tolerate (they are idempotent).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import time
from typing import Any

import dramatiq
from dramatiq import Message
from sqlalchemy import delete, event, func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction

from jobcore import routing
from jobcore import unique as uniqueness
from jobcore.db import get_engine
from jobcore.ledger.args import ledger_fields
from jobcore.ledger.states import State
from jobcore.models import OutboxMessage
from jobcore.sends import LEDGER_RECORDED_OPTION, bypass, checked_body

logger = logging.getLogger(__name__)

_PENDING_KEY = "shopjobs.outbox"
_WAKE_KEY = "shopjobs.outbox.relayed"
_ROWS_KEY = "shopjobs.outbox.rows"
_SAVEPOINTS_KEY = "shopjobs.outbox.savepoints"
# the process's relay when it publishes this process's committed sends (``relay_sends_with``)
_relay: Any = None
# a delay longer than this is held in the outbox by the database clock (see jobcore.sends);
# the entry point sets it from its settings
delay_in_db_after_ms = 30_000
__all__ = ["LEDGER_RECORDED_OPTION", "enqueue", "publish", "relay_pending", "relay_sends_with"]


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


def relay_sends_with(relay: Any) -> None:
    """Hand this process's committed sends to ``relay`` (a started ``jobcore.relay.Relay``).

    Without it, the committing thread publishes its transaction's messages after COMMIT, one
    confirmed publish (a round trip) each. With it, the rows are due at commit and the commit
    wakes the relay, which publishes many rows per batch with asynchronous confirms: the
    service's thread does not wait for RabbitMQ at all. ``None`` goes back to publishing after
    commit.
    """
    global _relay
    _relay = relay


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
    uniqueness.Unique.of(opts)  # bad options fail here, before anything is written
    message, declared = _message(actor, args, kwargs, opts)
    # the send's own unique options, else its actor's (declared here, or its route's)
    unique = uniqueness.Unique.for_message(
        message,
        declared.options if declared is not None else routing.actor_options(message.actor_name),
    )
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
    fields = ledger_fields(declared, message)
    held = delay_ms is not None and delay_ms > delay_in_db_after_ms
    relayed = held or _relay is not None
    # held: due by the database clock, published by the relay (never after commit); with a
    # relay in this process every send is due at commit and the relay publishes it
    session.info.setdefault(_ROWS_KEY, []).append(
        {
            "message_id": message.message_id,
            "actor": message.actor_name,
            "queue": message.queue_name,
            "state": State.SCHEDULED if held else State.ENQUEUED,
            "at": time.time(),
            "eta_ms": delay_ms or None,
            "body": base64.b64encode(body).decode(),
            "delay_ms": None if held else delay_ms,
            "due_ms": (delay_ms or 0) if relayed else None,
            **fields,
        }
    )
    if session.in_nested_transaction():
        write_rows(session)  # a savepoint rolled back must take its sends with it
    if not relayed:
        session.info.setdefault(_PENDING_KEY, []).append((message, delay_ms))
    elif not held:
        session.info[_WAKE_KEY] = True
    return message.message_id


# The rows of a transaction's sends, written in one statement: its ledger rows (a send whose
# id is already recorded keeps its row) and its outbox rows, due now + due_ms by the database
# clock when a relay publishes them, else published after commit by the sender.
_WRITE_ROWS = """
WITH v AS (
    SELECT * FROM json_to_recordset(%(rows)s::json) AS v(message_id text, actor text,
        queue text, state text, at float8, eta_ms bigint, body text, delay_ms int, due_ms bigint,
        args text, order_id bigint, user_id bigint, job_id text)
), ledger AS (
    INSERT INTO job_ledger (message_id, actor, queue, state, state_changed_at, enqueued_at, eta,
        attempts, args, order_id, user_id, job_id)
    SELECT message_id, actor, queue, state, to_timestamp(at), to_timestamp(at),
        CASE WHEN eta_ms IS NULL THEN NULL
             WHEN state = 'scheduled' THEN now() + make_interval(secs => eta_ms / 1000.0)
             ELSE to_timestamp(at + eta_ms / 1000.0) END,
        0, args::jsonb, order_id, user_id, job_id
    FROM v
    ORDER BY message_id  -- the ledger writer's lock order (jobcore.ledger.writer)
    ON CONFLICT (message_id) DO NOTHING
)
INSERT INTO outbox (message_id, queue, body, delay_ms, due_at)
SELECT message_id, queue, decode(body, 'base64'), delay_ms,
    CASE WHEN due_ms IS NULL THEN NULL ELSE now() + make_interval(secs => due_ms / 1000.0) END
FROM v
"""


def write_rows(session: Session) -> None:
    """Write the sends ``enqueue`` buffered in ``session`` (one statement for all of them).

    It runs before any statement the session executes, before a flush and before COMMIT, so
    the rows are there whenever the transaction could look for them, and a transaction that
    sends many messages pays one round trip for them instead of two per message.
    """
    rows = session.info.pop(_ROWS_KEY, None)
    if rows:
        _execute_rows(session.connection().connection, rows)


def _execute_rows(dbapi_connection: Any, rows: list[dict[str, Any]]) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(_WRITE_ROWS, {"rows": json.dumps(rows, separators=(",", ":"))})
    finally:
        cursor.close()


@event.listens_for(Session, "do_orm_execute")
def _write_before_statement(state: ORMExecuteState) -> None:
    write_rows(state.session)


@event.listens_for(Session, "before_flush")
def _write_before_flush(session: Session, flush_context: Any, instances: Any) -> None:
    write_rows(session)


@event.listens_for(Session, "before_commit")
def _write_before_commit(session: Session) -> None:
    write_rows(session)


@event.listens_for(Session, "after_transaction_create")
def _before_savepoint(session: Session, transaction: SessionTransaction) -> None:
    """A savepoint starts: the sends buffered before it are written outside it (on the outer
    transaction's connection, before the lazily emitted SAVEPOINT), and it remembers how many
    sends wait to be published, so rolling it back forgets its own."""
    if not transaction.nested or transaction.parent is None:
        return
    if session.info.get(_ROWS_KEY):
        rows = session.info.pop(_ROWS_KEY)
        connection = transaction.parent._connection_for_bind(session.get_bind(), None)
        _execute_rows(connection.connection, rows)
    marks = session.info.setdefault(_SAVEPOINTS_KEY, {})
    marks[id(transaction)] = len(session.info.get(_PENDING_KEY, ()))


@event.listens_for(Session, "after_soft_rollback")
def _forget_savepoint_sends(session: Session, previous_transaction: SessionTransaction) -> None:
    if not previous_transaction.nested:
        return
    mark = session.info.get(_SAVEPOINTS_KEY, {}).pop(id(previous_transaction), None)
    pending = session.info.get(_PENDING_KEY)
    if mark is not None and pending is not None:
        del pending[mark:]


@event.listens_for(Session, "after_commit")
def _publish_after_commit(session: Session) -> None:
    session.info.pop(_SAVEPOINTS_KEY, None)
    pending = session.info.pop(_PENDING_KEY, None)
    if pending:
        publish(pending)
    relay = _relay
    if session.info.pop(_WAKE_KEY, False) and relay is not None:
        relay.wake()


@event.listens_for(Session, "after_transaction_end")
def _discard_at_end(session: Session, transaction: SessionTransaction) -> None:
    """The outer transaction ended: after a commit its sends were written and handed on; after
    a rollback or a close they are gone. (``after_rollback`` would fire for a savepoint's
    rollback too, which must keep the sends made before the savepoint.)"""
    if transaction.parent is not None:
        return  # a savepoint (see _forget_savepoint_sends) or a subtransaction
    session.info.pop(_ROWS_KEY, None)
    session.info.pop(_SAVEPOINTS_KEY, None)
    session.info.pop(_PENDING_KEY, None)
    session.info.pop(_WAKE_KEY, None)


def publish(pending: list[tuple[Message[Any], int | None]]) -> int:
    """Publish committed outbox messages and delete their rows; failures stay for the relay."""
    broker = dramatiq.get_broker()
    sent: list[str] = []
    failed: list[str] = []
    for position, (message, delay_ms) in enumerate(pending):
        try:
            with bypass():  # already durable: published now even inside a job
                broker.enqueue(message, delay=delay_ms)
        except Exception as exc:
            # the broker away is one line, no traceback, and the transaction's other sends are
            # not tried (each would wait for its own refused connection): the relays take them
            away = isinstance(exc, dramatiq.errors.BrokerConnectionError)
            logger.warning(
                "publish of message %r failed (%s: %s); the outbox relay will retry it%s",
                message.message_id,
                type(exc).__name__,
                exc,
                f", with the {len(pending) - position - 1} sends after it" if away else "",
                exc_info=not away,
            )
            failed.append(message.message_id)
            if away:
                failed.extend(m.message_id for m, _ in pending[position + 1 :])
                break
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
