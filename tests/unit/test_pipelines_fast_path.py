"""The stack's Pipelines still feeds each step's result to the next, and skips other jobs."""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.brokers.stub import StubBroker

from middleware.pipelines import Pipelines


def test_a_pipeline_runs_through_and_a_lone_job_sends_nothing():
    broker = StubBroker(middleware=[Pipelines()])
    seen: list[Any] = []

    @dramatiq.actor(broker=broker, queue_name="p")
    def double(x: int) -> int:
        return x * 2

    @dramatiq.actor(broker=broker, queue_name="p")
    def keep(x: int, y: int | None = None) -> None:
        seen.append((x, y))

    worker = dramatiq.Worker(broker, worker_threads=1)
    worker.start()
    try:
        # a pipeline: the first step's result is the next step's last argument
        dramatiq.pipeline([double.message(3), keep.message()], broker=broker).run()
        broker.join("p")
        worker.join()
        assert seen == [(6, None)]

        # a job without a pipe_target sends nothing after it
        enqueued: list[str] = []
        broker.add_middleware(_Enqueued(enqueued))
        double.send(5)
        broker.join("p")
        worker.join()
        assert enqueued == ["double"] and seen == [(6, None)]
    finally:
        worker.stop()


class _Enqueued(dramatiq.Middleware):
    def __init__(self, names: list[str]) -> None:
        self.names = names

    def after_enqueue(self, broker: Any, message: Any, delay: Any) -> None:
        self.names.append(message.actor_name)
