"""Re-driving orders whose jobs RabbitMQ dropped (T22's recovery): ``shopjobs orders redrive``
on real workers, RabbitMQ, PostgreSQL and the payment stand-in."""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Self

import pytest
from sqlalchemy import func, select, text

import actors  # noqa: F401  (declares the actors: the ledger names each send's order)
import broker  # noqa: F401  (builds the process: settings, database, routing table)
from jobcore import outbox, queue_depth, worker_registry
from jobcore.db import session_scope
from jobcore.ledger import lost
from jobcore.ledger.lost import LOST
from jobcore.models import AuditLog, LedgerEntry, OutboxMessage
from programs.cli import main as cli
from shop.models import Order
from shop.models.orders import InventoryReservation
from shop.orders import redrive
from shop.orders.pipeline import order_pipeline
from tests.support import amqp
from tests.support.factories import make_order, make_product
from tests.support.ledger import entry, state
from tests.support.waiting import wait_until
from tests.support.workers import register_elsewhere


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


@contextlib.contextmanager
def _beating(name: str) -> Iterator[None]:
    """The registry row ``name`` beats as a live worker's does (every 0.2 s here)."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(0.2):
            with session_scope() as s:
                s.execute(
                    text("UPDATE worker_processes SET heartbeat_at = now() WHERE name = :n"),
                    {"n": name},
                )

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _take(queue: str) -> bytes:
    """The next message of ``queue``, taken off it (acked): RabbitMQ's drop, with a copy."""
    with amqp.channel() as ch:
        method, _, body = ch.basic_get(queue, auto_ack=True)
    assert method is not None, f"nothing in {queue}"
    return body


def _plan() -> list[redrive.Redrive]:
    with session_scope() as s:
        found = lost.lost_ids(s, os.environ["SHOPJOBS_AMQP_URL"], 0, fifo=True)
        return redrive.find(s, 0, found, 10)


def _runs(order_id: int, actor: str) -> int:
    """Runs of ``actor`` for the order the ledger records (a skipped duplicate is no run)."""
    with session_scope() as s:
        return s.scalar(
            select(func.count()).where(
                LedgerEntry.order_id == order_id,
                LedgerEntry.actor == actor,
                LedgerEntry.state == "succeeded",
            )
        )


def _reservations(order_id: int) -> int:
    with session_scope() as s:
        return s.scalar(
            select(func.count())
            .select_from(InventoryReservation)
            .where(InventoryReservation.order_id == order_id)
        )


class _OrdersFlowing:
    """New orders, one every 0.2 s, while in the ``with`` block: the queues keep flowing."""

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        try:
            while not self._stop.wait(0.2):
                order_id = _order()
                _send_pipeline(order_id)
                self.ids.append(order_id)
        except BaseException as exc:
            self.error = exc
            raise

    def completed(self) -> int:
        with session_scope() as s:
            return s.scalar(
                select(func.count()).where(Order.id.in_(self.ids), Order.status == "completed")
            )

    def open(self) -> int:
        return len(self.ids) - self.completed()


def _old_depth(queue: str) -> int:
    """What the count-based check saw: ready messages plus those the workers hold."""
    with session_scope() as s:
        held = worker_registry.held(s).get(queue, 0)
    return queue_depth.ready(os.environ["SHOPJOBS_AMQP_URL"], [queue])[queue] + held


def _purge(queue: str) -> int:
    with amqp.channel() as ch:
        return ch.queue_purge(queue).method.message_count


def test_an_order_whose_step_a_purged_queue_dropped_is_redriven_to_completion_once(
    stand_ins, start_worker, capsys
):
    # Given a paid order whose next step, the reservation, was purged from its queue (a copy of
    # its message kept aside, to deliver late)
    order_id, lost_id = _paid_order_with_its_reservation_in_the_queue(start_worker)
    late_copy = _take("orders")
    assert json.loads(late_copy)["message_id"] == lost_id and amqp.depth("orders") == 0

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
    assert order["left"] == [] and order["skipped"] is None
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

    # Then the order completes, its payment validated once and charged once
    wait_until(lambda: _status(order_id) == "completed", timeout=60, what="the order completed")
    charges = Counter(c["order_id"] for c in stand_ins["payments"].ledger()["charges"])
    assert charges[order_id] == 1
    assert _runs(order_id, "payments.validate_payment") == 1

    # When the lost message turns up late after all
    amqp.publish_raw("orders", late_copy)

    # Then it is skipped as the duplicate of a finished job: one reservation, one run
    wait_until(lambda: entry(lost_id).duplicates == 1, what="the late copy skipped")
    assert state(lost_id) == "dead"
    assert _reservations(order_id) == 1
    assert _runs(order_id, "orders.reserve_inventory") == 1


def test_a_step_lost_while_its_queue_keeps_flowing_is_found_and_redriven(
    stand_ins, start_worker, capsys
):
    # Given a paid order whose reservation RabbitMQ dropped from the orders queue
    order_id, lost_id = _paid_order_with_its_reservation_in_the_queue(start_worker)
    _take("orders")

    # When other orders keep flowing through the same queue, more than its workers keep up
    # with (the warehouse answers in 0.5 s): it is never empty, and its workers hold some
    warehouse = stand_ins["warehouse"]
    warehouse.set_faults(mode="slow", delay_s=0.5)
    start_worker("actors", threads=2)
    flowing = _OrdersFlowing()
    redriven: dict[int, str] = {}
    depths: list[int] = []

    def found() -> bool:
        depths.append(_old_depth("orders"))
        for row in _redrive(capsys, "--older-than", "0")["orders"]:
            if row["message_id"]:
                redriven[row["order_id"]] = row["message_id"]
        return order_id in redriven

    with flowing:
        wait_until(lambda: flowing.completed() >= 3, timeout=60, what="the others flowing")
        wait_until(lambda: _old_depth("orders") >= 5, timeout=60, what="a backlog in the queue")
        wait_until(found, timeout=90, interval=1, what="the lost step found under load")
        open_then = flowing.open()
    warehouse.set_faults(mode="none")

    # Then it was found while the others still flowed, and only it was re-driven
    assert flowing.error is None, flowing.error
    assert open_then > 0, "the queue had stopped flowing: the test proves nothing"
    # (a check counting the queue's messages, ready or held, saw it busy at every look)
    assert min(depths) > 0, depths
    assert redriven.keys() == {order_id}
    assert entry(lost_id).state == "dead"
    wait_until(lambda: _status(order_id) == "completed", timeout=60, what="the order completed")
    assert _runs(order_id, "orders.reserve_inventory") == 1
    wait_until(
        lambda: flowing.completed() == len(flowing.ids), timeout=120, what="the others completed"
    )


def test_a_job_claimed_between_the_plan_and_the_redrive_stops_it_and_nothing_is_sent(
    start_worker,
):
    # Given a stranded order, planned for re-drive
    order_id, lost_id = _paid_order_with_its_reservation_in_the_queue(start_worker)
    _take("orders")
    [item] = _plan()
    rows_before = _ledger_rows()

    # When a worker claims the lost job before the re-drive closes it (its message did exist)
    with session_scope() as s:
        s.execute(
            text("UPDATE job_ledger SET state = 'running' WHERE message_id = :m"), {"m": lost_id}
        )

    # Then the re-drive backs off: its send rolled back with it, nothing published
    with pytest.raises(redrive.MovedOn, match="claimed by a worker"):
        redrive._redrive(item, None)
    assert item.message_id is None
    assert state(lost_id) == "running"
    assert _ledger_rows() == rows_before and _outbox_rows() == 0
    assert amqp.depth("orders") == 0
    assert _status(order_id) == "paid"


def test_two_redrives_at_once_send_once(start_worker):
    # Given a stranded order that two re-drives (the schedule's, an operator's) both planned
    _, lost_id = _paid_order_with_its_reservation_in_the_queue(start_worker)
    _take("orders")
    first, second = _plan()[0], _plan()[0]

    # When both run at once
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def run(item: redrive.Redrive) -> None:
        barrier.wait()
        try:
            redrive._redrive(item, None)
            outcomes.append("sent")
        except redrive.MovedOn as exc:
            outcomes.append(f"moved on: {exc}")

    threads = [threading.Thread(target=run, args=(i,)) for i in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    # Then one sent the step and the other found it sent: one new job, one message
    assert len(outcomes) == 2 and outcomes.count("sent") == 1, outcomes
    with session_scope() as s:
        again = s.scalars(select(LedgerEntry).where(LedgerEntry.replay_of == lost_id)).all()
    assert len(again) == 1
    wait_until(
        lambda: _outbox_rows() == 0 and amqp.depth("orders") == 1, what="one message published"
    )
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
    message_id = _send_pipeline(waiting)
    wait_until(lambda: amqp.depth("payments") == 1, what="the first step in its queue")

    # Then it is not stranded: its message exists
    assert _redrive(capsys, "--older-than", "0")["stranded"] == 0

    # Given its message is gone from the queue, but a live worker lists it as held
    _purge("payments")
    register_elsewhere("payments", [message_id])
    # Then it is not stranded either: the worker holds it
    assert _redrive(capsys, "--older-than", "0")["stranded"] == 0

    # Given the worker, beating, holds another message of the queue instead
    with session_scope() as s:
        s.execute(text("UPDATE worker_processes SET held_ids = '[\"another\"]'"))
    with _beating("elsewhere:1"):
        # Then it is lost: held messages of its queue do not hide it
        assert _redrive(capsys, "--older-than", "0", "--dry-run")["stranded"] == 1

    # Given the worker lists it again, but is gone (its heartbeat stale)
    with session_scope() as s:
        s.execute(
            text(
                "UPDATE worker_processes SET held_ids = jsonb_build_array(CAST(:id AS text)),"
                " heartbeat_at = now() - interval '1 minute'"
            ),
            {"id": message_id},
        )
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
