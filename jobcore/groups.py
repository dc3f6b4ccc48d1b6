"""Groups: run many jobs, then one callback when all of them have reached a final state.

Dramatiq's group completion needs Redis or Memcached and never fires when a child fails for
good. Here the barrier is a PostgreSQL row (``job_groups``): the ledger writer counts a child in
the same commit as the child's final state (``settle``), one ``job_group_members`` row per child
so a child delivered twice counts once, and the commit that makes the count reach the total
writes the callbacks' sends in that transaction: each callback exactly once, through the durable
send path (outbox rows the relay publishes).

    g = group([notify.message(u) for u in users], on_settled=report.message(campaign_id))
    with session_scope() as s:
        g.enqueue(s)          # the barrier row and every child, in the caller's transaction

``on_success`` fires when every child succeeded, ``on_failure`` when at least one failed (or
was dead-lettered or cancelled), ``on_settled`` in both cases. A callback may be a pipeline
(``on_settled=pipeline([c, d])``): a group is then a step of a pipeline, the next steps
starting when it has settled.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import uuid
from typing import Any

import dramatiq
from dramatiq import Message
from sqlalchemy import text
from sqlalchemy.orm import Session

from jobcore import sends as job_sends
from jobcore.errors import InvalidSend
from jobcore.ledger.states import FINAL, State

GROUP_OPTION = "group_id"
CALLBACKS = ("on_success", "on_failure", "on_settled")
MAX_CHILDREN = 100_000


@dataclasses.dataclass
class Group:
    """Children to run and the callbacks to send when they have settled (see ``group``)."""

    children: list[Message[Any]]
    on_success: Message[Any] | None = None
    on_failure: Message[Any] | None = None
    on_settled: Message[Any] | None = None
    id: str = dataclasses.field(default_factory=lambda: str(uuid.uuid4()))

    def __post_init__(self) -> None:
        for kind in CALLBACKS:  # a pipeline as a callback: its first step, which carries the rest
            value = getattr(self, kind)
            if isinstance(value, dramatiq.pipeline):
                setattr(self, kind, value.messages[0] if value.messages else None)
        if not self.children:
            raise InvalidSend("a group needs at least one message; nothing was sent")
        if len(self.children) > MAX_CHILDREN:
            raise InvalidSend(f"a group holds at most {MAX_CHILDREN} messages")
        for message in [*self.children, *self.callbacks().values()]:
            if not isinstance(message, Message):
                raise InvalidSend(f"a group takes messages (actor.message(...)), got {message!r}")
        if len({m.message_id for m in self.children}) != len(self.children):
            raise InvalidSend("a group's messages must be distinct (one message id each)")

    def callbacks(self) -> dict[str, Message[Any]]:
        return {k: getattr(self, k) for k in CALLBACKS if getattr(self, k) is not None}

    def enqueue(self, session: Session) -> str:
        """Write the barrier and every child in ``session``'s transaction; returns the group id.

        The relay publishes the children once the transaction commits.
        """
        _open(session, self.id, len(self.children), self.callbacks())
        add(session, self.id, self.children)
        return self.id


def open_group(
    session: Session,
    total: int,
    *,
    group_id: str | None = None,
    on_success: Callback | None = None,
    on_failure: Callback | None = None,
    on_settled: Callback | None = None,
) -> str:
    """Write the barrier of a group of ``total`` children sent later with ``add`` (a fan-out
    in chunks, each chunk a job); returns its id. The group settles when ``total`` distinct
    messages sent into it have reached a final state, so the sender must send exactly
    ``total`` (derived ids make a chunk sent twice harmless: a message id counts once)."""
    if isinstance(total, bool) or not isinstance(total, int) or total < 1:
        raise InvalidSend(f"a group needs at least one message; got a total of {total!r}")
    if total > MAX_CHILDREN:
        raise InvalidSend(f"a group holds at most {MAX_CHILDREN} messages")
    probe = Group([Message("q", "a", (), {}, {})], on_success, on_failure, on_settled)  # type: ignore[arg-type]
    gid = group_id or probe.id
    _open(session, gid, total, probe.callbacks())
    return gid


def _open(session: Session, group_id: str, total: int, callbacks: dict[str, Message[Any]]) -> None:
    broker = dramatiq.get_broker()
    threshold = getattr(broker, "delay_in_db_after_ms", 30_000)
    rows = {
        kind: job_sends.make_send(broker, m, None, threshold).as_json()
        for kind, m in callbacks.items()
    }
    session.execute(
        text("INSERT INTO job_groups (id, total, callbacks) VALUES (:id, :total, :cb)"),
        {"id": group_id, "total": total, "cb": json.dumps(rows)},
    )


def child(message: Message[Any], group_id: str) -> Message[Any]:
    """``message`` as a child of ``group_id`` (its final state counts there)."""
    return message.copy(options={GROUP_OPTION: group_id})


def add(session: Session, group_id: str, messages: list[Message[Any]]) -> list[str]:
    """Send ``messages`` as children of ``group_id`` in ``session``'s transaction (durable: the
    relay publishes them after commit); returns their ids. A message id already written (a
    chunk fanned out twice) is not written again and still counts once."""
    for message in messages:
        if not isinstance(message, Message):
            raise InvalidSend(f"a group takes messages (actor.message(...)), got {message!r}")
    broker = dramatiq.get_broker()
    threshold = getattr(broker, "delay_in_db_after_ms", 30_000)
    children = [job_sends.make_send(broker, child(m, group_id), None, threshold) for m in messages]
    if not children:
        return []
    cursor = session.connection().connection.cursor()
    try:
        job_sends.write(cursor, children)
        cursor.execute(
            "UPDATE job_ledger SET group_id = %(g)s WHERE message_id = ANY(%(ids)s)"
            " AND group_id IS DISTINCT FROM %(g)s",
            {"g": group_id, "ids": [c.message_id for c in children]},
        )
    finally:
        cursor.close()
    return [c.message_id for c in children]


Callback = Message[Any] | dramatiq.pipeline


def group(
    children: list[Message[Any]],
    *,
    on_success: Callback | None = None,
    on_failure: Callback | None = None,
    on_settled: Callback | None = None,
) -> Group:
    """A group of ``children`` with its callbacks; an empty group raises ``InvalidSend``.

    A callback may be a pipeline: its steps run after the group, one after the other, which
    makes the group a step of a pipeline (``step -> group -> next steps``): the step before
    enqueues the group, and ``on_settled=pipeline([...])`` starts the steps after it.
    """
    return Group(list(children), on_success, on_failure, on_settled)  # type: ignore[arg-type]


# One statement: count the children that reach a final state for the first time, and return
# the groups whose count reached their total in this transaction (the row lock of the UPDATE
# orders concurrent writers, each adding to the latest counts).
_SETTLE = """
WITH m AS (
    INSERT INTO job_group_members (message_id, group_id, outcome)
    SELECT v.message_id, v.group_id, v.outcome
    FROM json_to_recordset(%(rows)s::json) AS v(message_id text, group_id text, outcome text)
    ORDER BY v.group_id, v.message_id
    ON CONFLICT (message_id) DO NOTHING
    RETURNING group_id, outcome
), c AS (
    SELECT group_id, count(*) FILTER (WHERE outcome = 'succeeded') AS ok,
        count(*) FILTER (WHERE outcome <> 'succeeded') AS bad
    FROM m GROUP BY group_id
)
UPDATE job_groups g SET succeeded = g.succeeded + c.ok, failed = g.failed + c.bad,
    settled_at = CASE WHEN g.succeeded + c.ok + g.failed + c.bad >= g.total THEN now() END
FROM c WHERE g.id = c.group_id AND g.settled_at IS NULL
RETURNING g.id, g.failed, g.total, g.succeeded, g.callbacks
"""
_FIRED = "UPDATE job_groups SET fired = %(fired)s::jsonb WHERE id = %(id)s"


def settle(cursor: Any, finals: list[tuple[str, str, State]]) -> list[job_sends.Send]:
    """Count ``(group_id, message_id, state)`` final states with ``cursor`` (the ledger
    writer's transaction); returns the callbacks' sends of the groups that settled now."""
    rows = [
        {"group_id": g, "message_id": m, "outcome": "succeeded" if s == State.SUCCEEDED else s}
        for g, m, s in finals
        if s in FINAL and s != State.SKIPPED  # a skip is a duplicate of a counted outcome
    ]
    if not rows:
        return []
    cursor.execute(_SETTLE, {"rows": json.dumps(rows, separators=(",", ":"))})
    fired: list[job_sends.Send] = []
    for group_id, failed, total, succeeded, callbacks in cursor.fetchall():
        if succeeded + failed < total:
            continue
        kinds = ["on_settled", "on_failure" if failed else "on_success"]
        chosen = {k: callbacks[k] for k in kinds if k in callbacks}
        fired += [_send(row) for row in chosen.values()]
        cursor.execute(
            _FIRED,
            {"id": group_id, "fired": json.dumps({k: v["message_id"] for k, v in chosen.items()})},
        )
    return fired


def _send(row: dict[str, Any]) -> job_sends.Send:
    fields = {k: row.get(k) for k in ("args", "order_id", "user_id", "job_id")}
    return job_sends.Send(
        message_id=row["message_id"],
        actor=row["actor"],
        queue=row["queue"],
        body=base64.b64decode(row["body"]),
        delay_ms=row.get("delay_ms"),
        hold_ms=row.get("hold_ms") or 0,
        fields={k: v for k, v in fields.items() if v is not None},
    )


_PRUNE = """
WITH doomed AS (
    SELECT id FROM job_groups WHERE settled_at < now() - make_interval(days => %(days)s)
    ORDER BY settled_at LIMIT %(batch)s FOR UPDATE SKIP LOCKED
), members AS (
    DELETE FROM job_group_members WHERE group_id IN (SELECT id FROM doomed)
)
DELETE FROM job_groups WHERE id IN (SELECT id FROM doomed)
"""


def prune(cursor: Any, days: int, batch: int = 1000) -> int:
    """Delete up to ``batch`` groups settled more than ``days`` ago, with their member rows
    (one transaction of the caller's); returns how many groups went. Pending groups stay."""
    cursor.execute(_PRUNE, {"days": days, "batch": batch})
    return int(cursor.rowcount)


def progress(session: Session, group_id: str) -> dict[str, Any] | None:
    """A group's barrier counts and its children's ledger states; None for an unknown group."""
    row = session.execute(
        text(
            "SELECT id, total, succeeded, failed, created_at, settled_at, callbacks, fired"
            " FROM job_groups WHERE id = :id"
        ),
        {"id": group_id},
    ).first()
    if row is None:
        return None
    states: dict[str, int] = dict(
        session.execute(
            text(
                "SELECT state, count(*) FROM job_ledger WHERE group_id = :id"
                " GROUP BY state ORDER BY state"
            ),
            {"id": group_id},
        ).all()
    )
    return {
        "group_id": row.id,
        "total": row.total,
        "succeeded": row.succeeded,
        "failed": row.failed,
        "pending": row.total - row.succeeded - row.failed,
        "children_by_state": ", ".join(f"{k} {v}" for k, v in states.items()),
        "created_at": row.created_at,
        "settled_at": row.settled_at,
        "callbacks": ", ".join(sorted(row.callbacks)) or "none",
        "fired": ", ".join(f"{k} {v}" for k, v in sorted((row.fired or {}).items())) or "none",
    }


_CHILDREN = """
SELECT message_id, actor, state, attempts, finished_at, error FROM job_ledger
WHERE group_id = :id
ORDER BY state IN ('failed', 'dead', 'cancelled') DESC, state, message_id
LIMIT :limit
"""


def children(session: Session, group_id: str, limit: int = 200) -> list[dict[str, Any]]:
    """Up to ``limit`` of a group's children from the ledger: failed ones first, then by state."""
    rows = session.execute(text(_CHILDREN), {"id": group_id, "limit": limit}).mappings().all()
    return [dict(r) for r in rows]


def fired_jobs(session: Session, group_id: str) -> dict[str, str]:
    """The callbacks a settled group sent: ``{kind: message_id}`` (empty while it is pending)."""
    fired = session.execute(
        text("SELECT fired FROM job_groups WHERE id = :id"), {"id": group_id}
    ).scalar()
    return dict(fired or {})
