"""Pipelines: Dramatiq's, called into only for a job that feeds a pipeline's next step.

Dramatiq's ``Pipelines.after_process_message`` runs an import statement and an actor lookup for
every job before it finds that the job has no ``pipe_target`` (2.5 % of a worker's CPU on no-op
jobs). Most jobs have none; the next step of one that has is sent by Dramatiq's own code.
"""

from __future__ import annotations

from typing import Any

from dramatiq import Broker
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Pipelines as DramatiqPipelines


class Pipelines(DramatiqPipelines):
    """Dramatiq's Pipelines, skipped for a message without a ``pipe_target``."""

    def after_process_message(
        self,
        broker: Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if message.options.get("pipe_target") is None:
            return  # what Dramatiq's hook would find, after its import and lookup
        super().after_process_message(broker, message, result=result, exception=exception)
