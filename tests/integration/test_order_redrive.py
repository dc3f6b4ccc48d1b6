"""Re-driving orders whose jobs RabbitMQ dropped (T22's recovery): ``shopjobs orders redrive``
on real workers, RabbitMQ, PostgreSQL and the payment stand-in."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from sqlalchemy import func, select, text

import broker  # noqa: F401  (builds the process: settings, database, routing table)
from jobcore import outbox
from jobcore.db import session_scope
from jobcore.ledger.lost import LOST
from jobcore.models import AuditLog, LedgerEntry, OutboxMessage
from jobcore.models.workers import WorkerProcess
from programs.cli import main as cli
from shop.models import Order
from shop.orders.pipeline import order_pipeline
from tests.support import amqp
from tests.support.factories import make_order, make_product
from tests.support.ledger import entry, state
from tests.support.waiting import wait_until


def _order() -> int:
    with session_scope() as s:
        return make_order(s, lines=[(make_product(s, stock=10), 1)]).id


def _send_pipeline(order_id: int) -> str:
    """The order's pipeline through the outbox, as a service sends it."""
    first = order_pipeline(order_id).messages[0]
    with session_scope() as s:
        return outbox.enqueue(s, first.actor_name, *first.args, options=dict(first.options))


def _job_of(order_id: int, actor: str) -> LedgerEntry | None:
    with session_scope() as s:
        return s.scalars(
            select(LedgerEntry).where(LedgerEntry.order_id == order_id, LedgerEntry.actor == actor)
        ).first()


def _ledger_rows() -> int:
    with session_scope() as s:
        return s.scalar(select(func.count()).select_from(LedgerEntry)) or 0


def _outbox_rows() -> int:
    with session_scope() as s:
        return s.scalar(select(func.count()).select_from(OutboxMessage)) or 0


def _status(order_id: int) -> str:
    with session_scope() as s:
        return s.get_one(Order, order_id).status


def _redrive(capsys, *options: str) -> dict:
    capsys.readouterr()
    assert cli(["orders", "redrive", "--json", *options]) == 0
    return json.loads(capsys.readouterr().out)


def _paid_order_with_its_reservation_in_the_queue(start_worker) -> tuple[int, str]:
    """An order paid by a worker that consumes only payments: the handoff to
    ``orders.reserve_inventory`` waits in the orders queue, which no worker consumes."""
    order_id = _order()
    worker = start_worker("actors", queues=("payments",))
    _send_pipeline(order_id)
    reserve = wait_until(
        lambda: _job_of(order_id, "orders.reserve_inventory"), what="the handoff recorded"
    )
    wait_until(
        lambda: _outbox_rows() == 0 and amqp.depth("orders") == 1, what="the handoff published"
    )
    worker.stop()
    assert _status(order_id) == "paid" and reserve.state == "enqueued"
    return order_id, reserve.message_id


def _purge(queue: str) -> int:
    with amqp.channel() as ch:
        return ch.queue_purge(queue).method.message_count


def test_an_order_whose_step_a_purged_queue_dropped_is_redriven_to_completion_once(
    stand_ins, start_worker, capsys
):
    # Given a paid order whose next step, the reservation, was purged from its queue
    order_id, lost_id = _paid_order_with_its_reservation_in_the_queue(start_worker)
    assert _purge("orders") == 1

    # When an operator re-drives stranded orders
    out = _redrive(capsys, "--older-than", "0")

    # Then the reservation (the rest of the pipeline) is sent again, and the lost job closed
    [order] = out["orders"]
    assert (out["stranded"], out["redriven"]) == (1, 1)
    assert (order["order_id"], order["status"], order["step"]) == (
        order_id,
        "paid",
        "orders.reserve_inventory",
    )
    assert order["lost"] == [lost_id] and order["lost_actors"] == ["orders.reserve_inventory"]
    lost = entry(lost_id)
    assert lost.state == "dead" and lost.error == f"{LOST}; re-driven as {order['message_id']}"
    again = entry(order["message_id"])
    assert (again.state, again.order_id, again.replay_of) == ("enqueued", order_id, lost_id)
    with session_scope() as s:
        audit = s.scalars(select(AuditLog).where(AuditLog.action == "orders.redrive")).one()
        assert audit.subject == f"order {order_id}"

    # and a second re-drive finds nothing: the new message waits in the queue
    assert _redrive(capsys, "--older-than", "0")["stranded"] == 0

    # When the workers run every queue
    start_worker("actors")

    # Then the order completes, charged once, and a late copy of the lost job would be skipped
    wait_until(lambda: _status(order_id) == "completed", timeout=60, what="the order completed")
    charges = Counter(c["order_id"] for c in stand_ins["payments"].ledger()["charges"])
    assert charges[order_id] == 1
    assert state(lost_id) == "dead"


def test_a_dry_run_lists_the_stranded_order_and_writes_nothing(stand_ins, start_worker, capsys):
    # Given a paid order whose reservation was purged
    order_id, lost_id = _paid_order_with_its_reservation_in_the_queue(start_worker)
    _purge("orders")
    rows_before = _ledger_rows()

    # When an operator asks what a re-drive would do
    out = _redrive(capsys, "--older-than", "0", "--dry-run")

    # Then it names the order and the step, and nothing was written or sent
    assert out["dry_run"] and (out["stranded"], out["redriven"]) == (1, 0)
    [order] = out["orders"]
    assert (order["order_id"], order["step"], order["message_id"]) == (
        order_id,
        "orders.reserve_inventory",
        None,
    )
    assert state(lost_id) == "enqueued"
    assert _ledger_rows() == rows_before and _outbox_rows() == 0
    assert amqp.depth("orders") == 0


def test_an_order_not_lost_is_not_redriven(clean, capsys):
    # Given an order whose first step waits in its queue (no worker runs)
    waiting = _order()
    _send_pipeline(waiting)
    wait_until(lambda: amqp.depth("payments") == 1, what="the first step in its queue")

    # Then it is not stranded: its message exists
    assert _redrive(capsys, "--older-than", "0")["stranded"] == 0

    # Given its message is gone from the queue, but a live worker holds one of that queue
    _purge("payments")
    with session_scope() as s:
        s.add(
            WorkerProcess(
                name="elsewhere:1",
                host="elsewhere",
                pid=1,
                queues=["payments"],
                held={"payments": 1},
            )
        )
    # Then it is not stranded either: the held message may be its own
    assert _redrive(capsys, "--older-than", "0")["stranded"] == 0

    # Given the worker is gone (its heartbeat stale)
    with session_scope() as s:
        s.execute(text("UPDATE worker_processes SET heartbeat_at = now() - interval '1 minute'"))
    # Then it is lost, but not re-driven before the threshold (SHOPJOBS_ORDERS_REDRIVE_AFTER_S, 600)
    assert _redrive(capsys, "--dry-run")["stranded"] == 0
    assert _redrive(capsys, "--older-than", "0", "--dry-run")["stranded"] == 1


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        (["--older-than", "-1"], "give 0 or more seconds"),
        (["--older-than", "soon"], "is not a number of seconds"),
        (["--older-than", "nan"], "give 0 or more seconds"),
        (["--limit", "0"], "give 1 or more"),
        (["--limit", "ten"], "is not a whole number"),
    ],
)
def test_bad_input_is_refused_with_the_reason_before_anything_runs(options, complaint, capsys):
    with pytest.raises(SystemExit) as exited:
        cli(["orders", "redrive", *options])
    assert exited.value.code == 2
    assert complaint in capsys.readouterr().err
