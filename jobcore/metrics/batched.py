"""Metric values kept in process memory and written to the multiprocess files in batches.

prometheus-client's multiprocess value writes its mmapped file on every ``inc``/``observe``
(about 8 writes per job here, under one lock shared by all threads, with a pid check each):
10 points of a worker's throughput. These values add in memory under a short lock and mark
themselves dirty; one flusher thread per process writes the dirty ones every
``FLUSH_INTERVAL_S``, and ``flush()`` writes them at once (the Metrics middleware calls it at
worker shutdown, and process exit does). A scrape therefore lags a process by at most one
interval, never by a count: every increment reaches the file.

Per-job updates go one step further: ``jobcore.metrics.job_events`` queues a job's start and
end and applies them in aggregate when a flush begins (``before_flush``).

The files and their format are prometheus-client's own (``MmapedDict``), so its
``MultiProcessCollector`` reads them unchanged.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing.util
import os
import threading
from collections.abc import Callable
from typing import Any

from prometheus_client.mmap_dict import MmapedDict, mmap_key

logger = logging.getLogger(__name__)
FLUSH_INTERVAL_S = 1.0


class _Store:
    """One process's files and values, and the thread that writes them."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.lock = threading.Lock()  # values: held for an addition or a snapshot
        self.file_lock = threading.Lock()  # files: MmapedDict is not thread-safe
        self.files: dict[str, MmapedDict] = {}
        self.values: list[Any] = []
        self.pid = os.getpid()
        self.wake = threading.Event()
        self.thread: threading.Thread | None = None

    def file(self, prefix: str) -> MmapedDict:
        """The process's file for ``prefix`` (caller holds ``file_lock``)."""
        if prefix not in self.files:
            directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
            path = os.path.join(directory, f"{prefix}_{self.pid}.db")
            self.files[prefix] = MmapedDict(path)
        return self.files[prefix]

    def start(self) -> None:
        if self.thread is None or not self.thread.is_alive():
            self.thread = threading.Thread(target=self._run, name="metrics-flusher", daemon=True)
            self.thread.start()

    def _run(self) -> None:
        while not self.wake.wait(self.interval):
            try:
                self.flush()
            except Exception:  # a failed write is retried at the next interval
                logger.exception("metrics flush failed; retrying in %.1f s", self.interval)

    def flush(self) -> int:
        """Write every value changed since the last flush; returns how many."""
        _run_before_flush()
        with self.lock:
            dirty = [(v, v._value, v._timestamp) for v in self.values if v._dirty]
            for value, _, _ in dirty:
                value._dirty = False
        if not dirty:
            return 0
        with self.file_lock:
            for value, amount, timestamp in dirty:
                self.file(value._prefix).write_value(value._key, amount, timestamp)
        return len(dirty)

    def after_fork(self) -> None:
        """A forked child starts its own files from zero (as prometheus-client's values do)."""
        self.lock = threading.Lock()
        self.file_lock = threading.Lock()
        self.files = {}
        self.pid = os.getpid()
        self.wake = threading.Event()
        self.thread = None
        for value in self.values:
            value._load()
        if self.values:
            self.start()


_stores: list[_Store] = []
# called by every flush before it writes: queued updates reach the values first
_before_flush: list[Callable[[], None]] = []


def batching() -> bool:
    """Whether this process's values are batched (else every update is written at once)."""
    return bool(_stores)


def before_flush(callback: Callable[[], None]) -> None:
    """Run ``callback`` at the start of every flush (``jobcore.metrics.job_events``)."""
    if callback not in _before_flush:
        _before_flush.append(callback)


def _run_before_flush() -> None:
    for callback in _before_flush:
        try:
            callback()
        except Exception:  # one bad source must not hold back the others' values
            logger.exception("metrics update before the flush failed: %r", callback)


def flush() -> int:
    """Write this process's pending metric values now (shutdown, or before a scrape that must
    see everything); returns how many values were written."""
    return sum(store.flush() for store in _stores)


def _flush_at_exit() -> None:
    try:
        flush()
    except Exception:  # exiting: nothing left to tell but the log
        logger.exception("final metrics flush failed")


def _after_fork() -> None:
    for store in _stores:
        store.after_fork()


atexit.register(_flush_at_exit)
os.register_at_fork(after_in_child=_after_fork)


def BatchedValue(
    interval: float = FLUSH_INTERVAL_S,
) -> type:  # a class factory, as MultiProcessValue
    """A value class for ``prometheus_client.values.ValueClass``: memory first, files in batches."""
    store = _Store(interval)
    _stores.append(store)
    # multiprocessing children (Dramatiq's worker processes) leave through os._exit, which
    # skips atexit; their finalizers with an exit priority still run
    multiprocessing.util.Finalize(None, _flush_at_exit, exitpriority=10)

    class BatchedValue_:
        _multiprocess = True

        def __init__(
            self,
            typ: str,
            metric_name: str,
            name: str,
            labelnames: Any,
            labelvalues: Any,
            help_text: str,
            multiprocess_mode: str = "",
            **kwargs: Any,
        ) -> None:
            self._prefix = f"{typ}_{multiprocess_mode}" if typ == "gauge" else typ
            self._key = mmap_key(metric_name, name, labelnames, labelvalues, help_text)
            self._dirty = False
            with store.lock:
                self._load()
                store.values.append(self)
                store.start()

        def _load(self) -> None:
            with store.file_lock:
                self._value, self._timestamp = store.file(self._prefix).read_value(self._key)

        def inc(self, amount: float) -> None:
            with store.lock:
                self._value += amount
                self._timestamp = 0.0
                self._dirty = True

        def set(self, value: float, timestamp: float | None = None) -> None:
            with store.lock:
                self._value = value
                self._timestamp = timestamp or 0.0
                self._dirty = True

        def set_exemplar(self, exemplar: Any) -> None:
            return  # not kept in multiprocess mode (as prometheus-client's own value)

        def get(self) -> float:
            with store.lock:
                return float(self._value)

        def get_exemplar(self) -> None:
            return None

    return BatchedValue_
