"""A real actor's message on another actor's queue is failed and skipped, never run."""

from __future__ import annotations

import dramatiq
from dramatiq import Worker
from dramatiq.brokers.stub import StubBroker

from middleware.dead_letters import reason_for
from middleware.queue_match import QueueMatch, WrongQueue


def test_a_message_on_another_actors_queue_is_not_run_and_is_dead_lettered_as_wrong_queue():
    # Given an actor on "inventory" and a worker with the check
    broker = StubBroker(middleware=[QueueMatch()])
    broker.emit_after("process_boot")
    ran: list[int] = []

    @dramatiq.actor(broker=broker, queue_name="inventory", actor_name="orders.reserve")
    def reserve(order_id: int) -> None:
        ran.append(order_id)

    broker.declare_queue("payments")
    worker = Worker(broker, worker_timeout=50)
    worker.start()
    try:
        # When its message arrives on "payments", and a right one on "inventory"
        broker.enqueue(reserve.message(1).copy(queue_name="payments"))
        reserve.send(2)
        broker.join("payments", fail_fast=False)
        broker.join("inventory")
        worker.join()
    finally:
        worker.stop()

    # Then only the right one ran; the other was failed (dead-lettered) as wrong_queue
    assert ran == [2]
    (dead,) = broker.dead_letters
    assert dead.actor_name == "orders.reserve" and dead.args == (1,)
    assert reason_for(broker, dead, WrongQueue("x")) == "wrong_queue"
