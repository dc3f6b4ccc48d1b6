"""Live updates: one poll per console process, fanned out to every open tab as server-sent events.

The poll reads a handful of maxima through indexes (the newest ledger change, dead letters,
audit rows, worker heartbeats) every ``live_poll_s`` while at least one tab listens, and
nothing when none does: the workers never do anything for the console. A tab is told *that*
something changed; it then reloads its own region. Tabs close the stream when hidden.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import StreamingResponse

from jobcore.db import session_scope

logger = logging.getLogger("shopjobs.console")
KEEPALIVE_S = 15.0

PULSE = text("""
SELECT (SELECT max(state_changed_at) FROM job_ledger)::text AS ledger,
       (SELECT max(id) FROM dead_letters)::text || '/' ||
       (SELECT count(*) FROM dead_letters WHERE replayed_at IS NULL)::text AS letters,
       (SELECT max(id) FROM audit_log)::text AS audit,
       (SELECT max(heartbeat_at) FROM worker_processes)::text AS workers
""")


def read_pulse() -> dict[str, Any]:
    with session_scope() as s:
        return dict(s.execute(PULSE).mappings().one())


class Hub:
    """Polls while anyone listens and hands each listener the latest pulse."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._listeners: set[asyncio.Queue[dict[str, Any]]] = set()
        self._task: asyncio.Task[None] | None = None
        self.polls = 0

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=4)
        self._listeners.add(queue)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._poll())
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._listeners.discard(queue)

    async def _poll(self) -> None:
        last: dict[str, Any] | None = None
        while self._listeners:
            try:
                pulse = await run_in_threadpool(read_pulse)
                self.polls += 1
            except Exception:
                logger.warning("console live poll failed; retrying", exc_info=True)
                pulse = None
            if pulse is not None and last is not None and pulse != last:
                changed = sorted(k for k in pulse if pulse[k] != last.get(k))
                for queue in list(self._listeners):
                    if queue.full():
                        queue.get_nowait()
                    queue.put_nowait({"changed": changed})
            # the first pulse is the baseline: a tab that just opened has that state already
            last = pulse if pulse is not None else last
            await asyncio.sleep(self.interval_s)

    async def stop(self) -> None:
        self._listeners.clear()
        if self._task is not None:
            self._task.cancel()


async def events(request: Request, hub: Hub) -> StreamingResponse:
    queue = hub.subscribe()

    async def stream() -> AsyncIterator[str]:
        try:
            yield "retry: 5000\n\n"
            while True:
                try:
                    change = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                yield f"event: change\ndata: {json.dumps(change)}\n\n"
        finally:
            hub.unsubscribe(queue)

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"X-Accel-Buffering": "no"}
    )
