"""Re-driving orders stranded by lost jobs: what the order needs next, sent again, once.

An order is stranded by lost jobs when it is not settled (pending, paid, reserved, fulfilling),
untouched for N seconds, and every job of it still open is lost (``jobcore.ledger.lost``:
waiting, published, in no queue and held by no worker, found message by message, so while other
orders keep flowing through the same queue): a queue was deleted or purged under it, and
nothing would ever move it on. The lost message cannot be sent again (the ledger keeps
redacted, capped arguments, not bodies), so the re-drive sends what the order needs next
through the outbox, in one transaction per order that also closes the lost rows (``dead``,
"lost: ...; re-driven as <id>") and links the new job to them (``replay_of``):

- the rest of the pipeline from the order's status (``shop.orders.pipeline.NEXT_STEP``), or
- the compensation again, when a lost job was one (a cancellation must not become a sale).

Only the pipeline's steps and its compensations are re-driven, and each must be ``dedupe=True``
(``REDRIVABLE``): the ledger's claim then skips any delivery of a job already finished, so a
late copy of a lost message (one called lost while a worker took it, or that RabbitMQ still
delivers) does not run after its row was closed. Other lost jobs of an order (an e-mail, say)
are listed with the reason (``left``) and left open: their late first delivery would still run.

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
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from jobcore import outbox, routing
from jobcore.db import session_scope
from jobcore.errors import InvalidInput
from jobcore.ledger import lost
from jobcore.ledger.states import OPEN, sql_list
from jobcore.models import AuditLog, LedgerEntry
from shop.models import Order
from shop.orders.metrics import REDRIVEN
from shop.orders.pipeline import NEXT_STEP, STEPS, order_pipeline
from shop.orders.stranded import UNSETTLED

logger = logging.getLogger(__name__)

COMPENSATE = "orders.compensate_order"
COMPENSATIONS = frozenset({COMPENSATE, "orders.cancel_order_async"})
#: the lost jobs a re-drive closes and the steps it sends: each must be deduped (see above)
REDRIVABLE = frozenset(STEPS) | COMPENSATIONS
NOT_DEDUPED = "not re-driven: not deduped, a late copy of its message would run again"

_OPEN = sql_list(OPEN)
# the stranded orders: unsettled, untouched, with a lost job and every open job lost (in SQL,
# so orders waiting on live jobs are not read again and again ahead of the stranded ones)
CANDIDATES_SQL = f"""
SELECT o.id AS order_id, o.status, EXTRACT(EPOCH FROM now() - o.updated_at) AS age_s
FROM orders o
WHERE o.id IN (SELECT j.order_id FROM job_ledger j
               WHERE j.message_id = ANY(:lost) AND j.order_id IS NOT NULL)
  AND o.status = ANY(:unsettled)
  AND o.updated_at < now() - make_interval(secs => :older_than_s)
  AND NOT EXISTS (SELECT 1 FROM job_ledger j
                  WHERE j.order_id = o.id AND j.state IN {_OPEN} AND j.message_id <> ALL(:lost))
ORDER BY o.id
LIMIT :limit
"""
# the order's open jobs other than the lost ones, read under the order's lock
OTHERS_OPEN_SQL = f"""
SELECT count(*) FROM job_ledger
WHERE order_id = :order_id AND state IN {_OPEN} AND message_id <> ALL(:lost)
"""


class MovedOn(Exception):
    """The order or one of its lost jobs moved meanwhile: nothing is sent for it."""


@dataclasses.dataclass
class Redrive:
    """One stranded order: what was lost, and what was (or, on a dry run, would be) sent."""

    order_id: int
    status: str
    age_s: float
    lost: list[str]  # the lost jobs the re-drive closes (REDRIVABLE ones)
    lost_actors: list[str]
    step: str | None  # what it sends (None: no lost job of the order may be re-driven)
    left: list[str] = dataclasses.field(default_factory=list)  # lost, not REDRIVABLE: left open
    left_actors: list[str] = dataclasses.field(default_factory=list)
    message_id: str | None = None  # the re-drive's message (None: a dry run, or skipped)
    skipped: str | None = None  # why a stranded order was left as it was
    # the closed jobs' ledger args (a lost compensation's reason), read with them; not reported
    lost_args: list[Any] = dataclasses.field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        del out["lost_args"]
        return out


def redrivable(actor: str) -> bool:
    """A pipeline step or compensation whose route dedupes (checked here too: a table changed
    without ``dedupe`` must not make the re-drive run a job twice)."""
    table = routing.routes()
    return actor in REDRIVABLE and actor in table and bool(table[actor].options.get("dedupe"))


def find(session: Session, older_than_s: float, lost_ids: set[str], limit: int) -> list[Redrive]:
    """The orders stranded by lost jobs for ``older_than_s`` seconds, oldest first: the plan."""
    params = {
        "lost": sorted(lost_ids),
        "unsettled": list(UNSETTLED),
        "older_than_s": older_than_s,
        "limit": limit,
    }
    candidates = session.execute(text(CANDIDATES_SQL), params).all()
    jobs = lost.open_jobs(session, [c.order_id for c in candidates], lost_ids)
    plan = []
    for candidate in candidates:
        mine = jobs.get(candidate.order_id, [])
        if not lost.stranded(mine):
            continue  # a job started meanwhile
        closed = [j for j in mine if redrivable(j.actor)]
        left = [j for j in mine if not redrivable(j.actor)]
        item = Redrive(
            order_id=candidate.order_id,
            status=candidate.status,
            age_s=round(float(candidate.age_s), 1),
            lost=[j.message_id for j in closed],
            lost_actors=[j.actor for j in closed],
            step=_next_step(candidate.status, [j.actor for j in closed]) if closed else None,
            left=[j.message_id for j in left],
            left_actors=[j.actor for j in left],
            lost_args=[j.args for j in closed],
        )
        if left and not closed:
            item.skipped = NOT_DEDUPED
        plan.append(item)
    return plan


def redrive_stranded(
    older_than_s: float,
    amqp_url: str,
    *,
    limit: int = 100,
    dry_run: bool = False,
    operator: str | None = None,
    fifo: bool = True,
) -> list[Redrive]:
    """Find the orders stranded by lost jobs and re-drive each (one transaction each).

    ``operator``: who asked (the CLI), recorded in the audit log; the schedule passes None.
    ``fifo``: the queues deliver in order (no ``SHOPJOBS_QUEUE_MAX_PRIORITY``).
    """
    if not older_than_s >= 0:  # NaN too
        raise InvalidInput(f"the age must be 0 or more seconds, not {older_than_s}")
    if limit < 1:
        raise InvalidInput(f"the limit must be 1 or more orders, not {limit}")
    with session_scope() as s:
        found = lost.lost_ids(s, amqp_url, older_than_s, fifo=fifo)
        plan = find(s, older_than_s, found, limit)
    for item in plan:
        if item.left:
            logger.warning(
                "order %r: lost jobs left open (%s): %s",
                item.order_id,
                NOT_DEDUPED,
                ", ".join(f"{a} {m}" for a, m in zip(item.left_actors, item.left, strict=True)),
            )
    if dry_run:
        return plan
    for item in plan:
        if item.step is None:
            continue
        try:
            _redrive(item, operator)
        except MovedOn as exc:
            item.skipped = str(exc)
            logger.info("order %r not re-driven: %s", item.order_id, exc)
    return plan


def _next_step(status: str, lost_actors: list[str]) -> str:
    if COMPENSATIONS.intersection(lost_actors):
        return COMPENSATE
    return NEXT_STEP[status]


def _compensation_args(order_id: int, lost_args: list[Any]) -> tuple[Any, ...]:
    """The lost compensation's reason and failed step when the ledger kept them whole."""
    for args in lost_args:
        if isinstance(args, dict) and isinstance(args.get("reason"), str) and args["reason"]:
            step = args.get("failed_step")
            return order_id, args["reason"], step if isinstance(step, str) else ""
    return order_id, "re-driven: its compensation was lost", ""


def _redrive(item: Redrive, operator: str | None) -> None:
    assert item.step is not None
    with session_scope() as s:
        status = s.scalar(select(Order.status).where(Order.id == item.order_id).with_for_update())
        if status != item.status:
            raise MovedOn(f"the order is {status} now")
        all_lost = item.lost + item.left
        others = s.scalar(text(OTHERS_OPEN_SQL), {"order_id": item.order_id, "lost": all_lost})
        if others:
            raise MovedOn(f"{others} other jobs of the order are open now")
        if item.step == COMPENSATE:
            message_id = outbox.enqueue(
                s, COMPENSATE, *_compensation_args(item.order_id, item.lost_args)
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
                    details={
                        "step": item.step,
                        "lost": item.lost,
                        "left": item.left,
                        "message_id": message_id,
                    },
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
