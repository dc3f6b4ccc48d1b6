"""Durable sends: nothing a job sends reaches the broker before it is committed in PostgreSQL.

While a job runs, every ``broker.enqueue`` its thread makes (an actor's ``send``, a pipeline's
next step from Dramatiq's Pipelines, Retries' re-enqueue, a compensation, a callback) is
buffered here instead of published. When the job ends, the buffered sends are handed to the
ledger writer with the job's final state, and the writer commits both in one transaction
(outbox rows with ``due_at``, ledger rows ``enqueued``, or ``scheduled`` when held) before the job's message is acked; the
relay (``jobcore.relay``) publishes them after that commit. A crash before the commit leaves a
redelivery and no sends; after it, an outcome and its sends: never an outcome without them.

Delays: a send delayed more than the threshold (``delay_in_db_after_s``, 30 s by default) is
held in the outbox with ``due_at = now() + delay`` by the database clock, and published by
the relay when due, so no worker holds it unacked (RabbitMQ closes channels whose deliveries
stay unacked past ``consumer_timeout``). Shorter delays keep Dramatiq's ``.DQ`` path: they are
published at once with their ETA, and a worker holds them at most the threshold.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

from dramatiq import Message
from dramatiq.common import q_name
from dramatiq.errors import ActorNotFound

from jobcore import routing
from jobcore import unique as uniqueness
from jobcore.db import get_engine
from jobcore.errors import InvalidInput
from jobcore.ledger.args import ledger_fields

logger = logging.getLogger(__name__)

LEDGER_RECORDED_OPTION = "ledger_recorded"
# messages carry ids and primitives: a body past this is a bug in its producer, refused at the
# send (nothing written) rather than stored, published and choked on by every consumer
MAX_MESSAGE_BYTES = 1024 * 1024


def checked_body(message: Message[Any]) -> bytes:
    """The message's encoded body; ``InvalidInput`` when it is over ``MAX_MESSAGE_BYTES``."""
    body = message.encode()
    if len(body) > MAX_MESSAGE_BYTES:
        raise InvalidInput(
            f"message {message.actor_name} is {len(body)} bytes, over the "
            f"{MAX_MESSAGE_BYTES}-byte limit: send ids, not data"
        )
    return body


# set on a MessageProxy while its job runs: JobStatus hands its final change over here, so the
# change is recorded once the job's last send is known (see ``hand_over``)
FINAL_CHANGE_ATTRIBUTE = "durable_final_change"


@dataclasses.dataclass
class Send:
    """One message a job sent, as the ledger writer stores it (outbox row + ledger row)."""

    message_id: str
    actor: str
    queue: str
    body: bytes
    delay_ms: int | None  # a short delay: the relay publishes it to the .DQ with its ETA
    hold_ms: int  # 0: due at commit; else a long delay held in PostgreSQL
    fields: dict[str, Any]  # ledger args (JSON text) and business ids
    unique: uniqueness.Unique | None = None  # claimed in the transaction that writes the rows

    def as_json(self) -> dict[str, Any]:
        row = {
            "message_id": self.message_id,
            "actor": self.actor,
            "queue": self.queue,
            "body": base64.b64encode(self.body).decode(),
            "delay_ms": self.delay_ms,
            "hold_ms": self.hold_ms,
            "eta_ms": self.hold_ms or self.delay_ms or None,
        }
        row.update(self.fields)
        return row


class _Local(threading.local):
    job: list[Send] | None = None
    bypass: int = 0


_local = _Local()


def begin() -> None:
    """Start buffering this thread's sends (a job starts)."""
    _local.job = []


def end() -> list[Send]:
    """Stop buffering; the sends the job made, in order."""
    sends, _local.job = _local.job or [], None
    return sends


def buffering() -> bool:
    return _local.job is not None and not _local.bypass


@contextlib.contextmanager
def bypass() -> Iterator[None]:
    """Publish straight away inside a job: for messages already durable (outbox rows, relays)."""
    _local.bypass += 1
    try:
        yield
    finally:
        _local.bypass -= 1


def hand_over(message: Any, change: Any) -> bool:
    """Keep a job's final ledger change on its message when the job buffers its sends.

    Returns False when nobody buffers this message's sends; the caller records it itself.
    """
    if not hasattr(message, FINAL_CHANGE_ATTRIBUTE):
        return False
    setattr(message, FINAL_CHANGE_ATTRIBUTE, change)
    return True


def make_send(
    broker: Any,
    message: Message[Any],
    delay: int | None,
    threshold_ms: int,
    args_max_bytes: int = 2048,
) -> Send:
    """The ``Send`` for ``broker.enqueue(message, delay=delay)``."""
    options = {k: v for k, v in message.options.items() if k != "eta"}
    options[LEDGER_RECORDED_OPTION] = True
    queue = q_name(message.queue_name)
    # built anew: Message.copy merges options, and a stale 'eta' must not travel
    ready: Message[Any] = Message(**{**message.asdict(), "queue_name": queue, "options": options})
    try:
        actor = broker.get_actor(message.actor_name)
    except ActorNotFound:
        actor = None
    # the message's own unique options, else its actor's; bad ones fail the send itself
    options_of_actor = (
        actor.options if actor is not None else routing.actor_options(message.actor_name)
    )
    unique = uniqueness.Unique.for_message(message, options_of_actor)
    delay = delay or 0
    held = delay > threshold_ms
    return Send(
        message_id=message.message_id,
        actor=message.actor_name,
        queue=queue,
        body=checked_body(ready),
        delay_ms=delay if 0 < delay and not held else None,
        hold_ms=delay if held else 0,
        fields=ledger_fields(actor, ready, args_max_bytes),
        unique=unique,
    )


# Both statements run in the caller's transaction: the ledger writer's batch (a job's sends
# commit with its outcome) or a producer's own (a long delay sent outside a job). A held send's
# row is 'scheduled' until the relay publishes it, any other 'enqueued'. A retry's message
# already has its ledger row (state 'retrying', which says the same and keeps its error): only
# its ETA changes. Rows are written in message_id order, the ledger writer's lock order.
#
# A message id can meet its own unpublished row: a copy of message X ran (a duplicate, or the
# first publish of a relay that died before its commit) and its retry is written while X's
# row still waits for a relay. The retry is a later attempt of the same message and replaces
# the row: keeping the old body published attempt 1 again, which the dedupe claim skips, and
# the retry was lost (the campaign test saw deliveries 'retrying' for ever). An older or equal
# attempt (a chunk fanned out twice, the notification sweep's re-queue) never replaces a newer
# one. Attempts are read from the bodies (Dramatiq's JSON: options.retries) only on a conflict.
_RETRIES = "COALESCE((convert_from({}, 'UTF8')::jsonb #>> '{{options,retries}}')::int, 0)"
_INSERT_OUTBOX = f"""
INSERT INTO outbox AS o (message_id, queue, body, delay_ms, due_at)
SELECT v.message_id, v.queue, decode(v.body, 'base64'), v.delay_ms,
    now() + make_interval(secs => v.hold_ms / 1000.0)
FROM json_to_recordset(%(rows)s::json) AS v(message_id text, queue text, body text,
    delay_ms int, hold_ms bigint)
ORDER BY v.message_id
ON CONFLICT (message_id) DO UPDATE SET queue = EXCLUDED.queue, body = EXCLUDED.body,
    delay_ms = EXCLUDED.delay_ms, due_at = EXCLUDED.due_at
WHERE {_RETRIES.format("EXCLUDED.body")} > {_RETRIES.format("o.body")}
"""
_INSERT_LEDGER = """
INSERT INTO job_ledger AS j (message_id, actor, queue, state, state_changed_at, args, attempts,
    enqueued_at, eta, order_id, user_id, job_id)
SELECT v.message_id, v.actor, v.queue,
    CASE WHEN v.hold_ms > 0 THEN 'scheduled' ELSE 'enqueued' END, now(), v.args::jsonb, 0, now(),
    now() + make_interval(secs => v.eta_ms / 1000.0), v.order_id, v.user_id, v.job_id
FROM json_to_recordset(%(rows)s::json) AS v(message_id text, actor text, queue text, args text,
    eta_ms bigint, hold_ms bigint, order_id bigint, user_id bigint, job_id text)
ORDER BY v.message_id  -- the ledger writer's lock order (jobcore.ledger.writer)
ON CONFLICT (message_id) DO UPDATE SET eta = EXCLUDED.eta
"""


def write(cursor: Any, sends: list[Send]) -> dict[str, str]:
    """Insert ``sends`` as outbox and ledger rows with ``cursor`` (psycopg2), uncommitted.

    Sends with a unique key claim it first; one that loses writes nothing. Returns the holder
    of each unique send's key (``{message_id: holder}``; its own id when it won).
    """
    if not sends:
        return {}
    # one row per message: two copies of one delivery (a redelivery running beside the first
    # in the same process) each send the same retry, and an upsert may touch a row only once
    distinct = {send.message_id: send for send in sends}
    keyed = [(s.unique, s.message_id) for s in distinct.values() if s.unique is not None]
    holders = uniqueness.claim(cursor, keyed) if keyed else {}
    kept = [s for s in distinct.values() if holders.get(s.message_id, s.message_id) == s.message_id]
    for message_id, holder in holders.items():
        if holder != message_id:
            logger.info("unique send %r dropped: its key is held by %r", message_id, holder)
    if kept:
        rows = json.dumps([s.as_json() for s in kept], separators=(",", ":"))
        cursor.execute(_INSERT_OUTBOX, {"rows": rows})
        cursor.execute(_INSERT_LEDGER, {"rows": rows})
    return holders


class DurableSendsBroker:
    """Put before the broker class: its ``enqueue`` buffers a running job's sends and holds
    long delays in PostgreSQL; everything else is published as Dramatiq does.

    ``store`` writes sends in a transaction of its own (``store_sends``); the relay wakes on
    ``sends_committed``.
    """

    delay_in_db_after_ms: int = 30_000
    args_max_bytes: int = 2048

    def declare_actor(self, actor: Any) -> None:
        """Refuse an actor whose unique options are impossible, before it is declared."""
        uniqueness.check_actor_options(actor.actor_name, actor.options)
        super().declare_actor(actor)  # type: ignore[misc]

    def enqueue(self, message: Any, *, delay: int | None = None) -> Any:
        if _local.bypass:
            return super().enqueue(message, delay=delay)  # type: ignore[misc]
        held = delay is not None and delay > self.delay_in_db_after_ms
        keyed = any(message.options.get(o) is not None for o in uniqueness.OPTIONS) or (
            routing.actor_options(message.actor_name, self).get(uniqueness.KEY_OPTION) is not None
        )
        if _local.job is None and not held and not keyed:
            return super().enqueue(message, delay=delay)  # type: ignore[misc]
        send = make_send(self, message, delay, self.delay_in_db_after_ms, self.args_max_bytes)
        if _local.job is not None:
            _local.job.append(send)
            return message
        # outside a job, a long delay or a unique send commits on its own; the relay publishes it
        holder = store_sends([send]).get(send.message_id, send.message_id)
        if holder == send.message_id:
            return message
        assert send.unique is not None
        if send.unique.refuse:
            raise uniqueness.DuplicateJob(send.unique.key, holder)
        return message.copy(message_id=holder)


def store_sends(sends: list[Send]) -> dict[str, str]:
    """Commit ``sends`` in a transaction of their own (a long delay or a unique send outside a
    job); returns the holders of their unique keys (see ``write``)."""
    raw = get_engine().raw_connection()
    try:
        cursor = raw.cursor()
        try:
            holders = write(cursor, sends)
        finally:
            cursor.close()
        raw.commit()
    finally:
        raw.close()
    return holders
