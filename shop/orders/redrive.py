"""Re-driving orders stranded by lost jobs: what the order needs next, sent again, once.

An order is stranded by lost jobs when it is not settled (pending, paid, reserved, fulfilling),
untouched for N seconds, and every job of it still open is lost (``jobcore.ledger.lost``:
waiting, published, in no queue and held by no worker): a queue was deleted or purged under
it, and nothing would ever move it on. The lost message cannot be sent again (the ledger keeps
redacted, capped arguments, not bodies), so the re-drive sends what the order needs next
through the outbox, in one transaction per order that also closes the lost rows (``dead``,
"lost: ...; re-driven as <id>") and links the new job to them (``replay_of``):

- the rest of the pipeline from the order's status (``shop.orders.pipeline.NEXT_STEP``), or
- the compensation again, when a lost job was one (a cancellation must not become a sale).

Sending a step twice has one effect: each is idempotent by a database key (one payment per
order, charged with the provider's idempotency key ``order-<id>``; one reservation per (order,
product); the warehouse's reference ``order-<id>``, checked before the call; a notification per
(template, entity, channel); the compensation's refund keyed ``compensate-order-<id>``). The
order's row is locked and its lost rows are closed only while still waiting, so two re-drives at
once (the schedule's and an operator's) send once, and a job that turns out to be alive (a
worker claimed it meanwhile) stops the re-drive of its order.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from jobcore import outbox
from jobcore.db import session_scope
from jobcore.errors import InvalidInput
from jobcore.ledger import lost
from jobcore.models import AuditLog, LedgerEntry
from jobcore.queue_depth import Depths
from shop.models import Order
from shop.orders.metrics import REDRIVEN
from shop.orders.pipeline import NEXT_STEP, order_pipeline
from shop.orders.stranded import UNSETTLED

logger = logging.getLogger(__name__)

COMPENSATE = "orders.compensate_order"
COMPENSATIONS = frozenset({COMPENSATE, "orders.cancel_order_async"})

# orders that might be stranded: unsettled, untouched, with a waiting job and none running
CANDIDATES_SQL = """
SELECT o.id AS order_id, o.status, EXTRACT(EPOCH FROM now() - o.updated_at) AS age_s
FROM orders o
WHERE o.status = ANY(:unsettled)
  AND o.updated_at < now() - make_interval(secs => :older_than_s)
  AND EXISTS (SELECT 1 FROM job_ledger j
              WHERE j.order_id = o.id AND j.state IN ('scheduled', 'enqueued', 'retrying'))
  AND NOT EXISTS (SELECT 1 FROM job_ledger j WHERE j.order_id = o.id AND j.state = 'running')
ORDER BY o.id
LIMIT :scan
"""
# the order's open jobs other than the lost ones, read under the order's lock
OTHERS_OPEN_SQL = """
SELECT count(*) FROM job_ledger
WHERE order_id = :order_id AND state IN ('scheduled', 'enqueued', 'running', 'retrying')
  AND message_id <> ALL(:lost)
"""


class MovedOn(Exception):
    """The order or one of its lost jobs moved meanwhile: nothing is sent for it."""


@dataclasses.dataclass
class Redrive:
    """One stranded order: what was lost, and what was (or, on a dry run, would be) sent."""

    order_id: int
    status: str
    age_s: float
    lost: list[str]
    lost_actors: list[str]
    step: str
    message_id: str | None = None  # the re-drive's message (None: a dry run, or skipped)
    skipped: str | None = None  # why a stranded order was left as it was

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def find(
    session: Session, older_than_s: float, depth: Callable[[str], int], limit: int
) -> list[Redrive]:
    """The orders stranded by lost jobs for ``older_than_s`` seconds, oldest first: the plan."""
    params = {"unsettled": list(UNSETTLED), "older_than_s": older_than_s, "scan": limit * 20}
    candidates = session.execute(text(CANDIDATES_SQL), params).all()
    jobs = lost.open_jobs(session, [c.order_id for c in candidates], older_than_s, depth)
    plan = []
    for candidate in candidates:
        mine = jobs.get(candidate.order_id, [])
        if not lost.stranded(mine):
            continue
        plan.append(
            Redrive(
                order_id=candidate.order_id,
                status=candidate.status,
                age_s=round(float(candidate.age_s), 1),
                lost=[j.message_id for j in mine],
                lost_actors=[j.actor for j in mine],
                step=_next_step(candidate.status, [j.actor for j in mine]),
            )
        )
        if len(plan) >= limit:
            break
    return plan


def redrive_stranded(
    older_than_s: float,
    amqp_url: str,
    *,
    limit: int = 100,
    dry_run: bool = False,
    operator: str | None = None,
) -> list[Redrive]:
    """Find the orders stranded by lost jobs and re-drive each (one transaction each).

    ``operator``: who asked (the CLI), recorded in the audit log; the schedule passes None.
    """
    if not older_than_s >= 0:  # NaN too
        raise InvalidInput(f"the age must be 0 or more seconds, not {older_than_s}")
    if limit < 1:
        raise InvalidInput(f"the limit must be 1 or more orders, not {limit}")
    with session_scope() as s:
        plan = find(s, older_than_s, Depths(s, amqp_url), limit)
        lost_args = {r.order_id: _args_of(s, r.lost) for r in plan if r.step == COMPENSATE}
    if dry_run:
        return plan
    for item in plan:
        try:
            _redrive(item, lost_args.get(item.order_id, []), operator)
        except MovedOn as exc:
            item.skipped = str(exc)
            logger.info("order %r not re-driven: %s", item.order_id, exc)
    return plan


def _next_step(status: str, lost_actors: list[str]) -> str:
    if COMPENSATIONS.intersection(lost_actors):
        return COMPENSATE
    return NEXT_STEP[status]


def _args_of(session: Session, message_ids: list[str]) -> list[Any]:
    return list(
        session.scalars(select(LedgerEntry.args).where(LedgerEntry.message_id.in_(message_ids)))
    )


def _compensation_args(order_id: int, lost_args: list[Any]) -> tuple[Any, ...]:
    """The lost compensation's reason and failed step when the ledger kept them whole."""
    for args in lost_args:
        if isinstance(args, dict) and isinstance(args.get("reason"), str) and args["reason"]:
            step = args.get("failed_step")
            return order_id, args["reason"], step if isinstance(step, str) else ""
    return order_id, "re-driven: its compensation was lost", ""


def _redrive(item: Redrive, lost_args: list[Any], operator: str | None) -> None:
    with session_scope() as s:
        status = s.scalar(select(Order.status).where(Order.id == item.order_id).with_for_update())
        if status != item.status:
            raise MovedOn(f"the order is {status} now")
        others = s.scalar(text(OTHERS_OPEN_SQL), {"order_id": item.order_id, "lost": item.lost})
        if others:
            raise MovedOn(f"{others} other jobs of the order are open now")
        if item.step == COMPENSATE:
            message_id = outbox.enqueue(
                s, COMPENSATE, *_compensation_args(item.order_id, lost_args)
            )
        else:
            first = order_pipeline(item.order_id, item.step).messages[0]
            message_id = outbox.enqueue(
                s, first.actor_name, *first.args, options=dict(first.options)
            )
        closed = lost.account(s, item.lost, message_id)
        if len(closed) != len(item.lost):
            raise MovedOn("a lost job was claimed by a worker meanwhile: it was not lost")
        # the new job concerns the order (whether or not this process declared its actor)
        # and descends from the lost one, as a dead letter's replay does
        s.execute(
            update(LedgerEntry)
            .where(LedgerEntry.message_id == message_id)
            .values(order_id=item.order_id, replay_of=item.lost[0])
        )
        if operator is not None:
            s.add(
                AuditLog(
                    actor=operator,
                    action="orders.redrive",
                    subject=f"order {item.order_id}",
                    details={"step": item.step, "lost": item.lost, "message_id": message_id},
                )
            )
    item.message_id = message_id
    REDRIVEN.labels(item.step).inc()
    logger.warning(
        "order %r re-driven: %s sent as %r (the order was %s for %.0f s; lost: %s)",
        item.order_id,
        item.step,
        message_id,
        item.status,
        item.age_s,
        ", ".join(f"{a} {m}" for a, m in zip(item.lost_actors, item.lost, strict=True)),
    )
