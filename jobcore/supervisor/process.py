"""One supervised process: a Dramatiq worker process or fork process, started by spawning.

The body of each child is Dramatiq's own (``dramatiq.cli.worker_process`` and
``fork_process``): the same signal handling, logging pipe, broker import, middleware boot,
fork registration (the canteen) and graceful stop as under ``dramatiq``. Children are spawned,
not forked: the supervisor's main process never imports the application, so a replacement
(or a reload) loads the code as it is on disk now, and no lock or socket of the supervisor
is inherited. Each child asks the kernel for SIGTERM when the supervisor dies, so a killed
supervisor never leaves orphan consumers behind.
"""

from __future__ import annotations

import argparse
import atexit
import ctypes
import multiprocessing
import os
import signal
import sys
import time
from multiprocessing.connection import Connection
from typing import Any

from dramatiq import cli
from dramatiq.compat import StreamablePipe

_PR_SET_PDEATHSIG = 1
_spawn = multiprocessing.get_context("spawn")


def _die_with(supervisor_pid: int) -> None:
    """SIGTERM this process when its supervisor dies (Linux); exit now if it is already gone."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the supervisor's SIGTERM is the only stop
        pass
    if os.getppid() != supervisor_pid:
        sys.exit(cli.RET_KILLED)


def run_worker(
    args: argparse.Namespace, slot: int, pipe: Any, canteen: Any, booted: Any, supervisor_pid: int
) -> None:
    """Body of a worker process: Dramatiq's ``worker_process``."""
    _die_with(supervisor_pid)
    try:
        cli.worker_process(args, slot, pipe, canteen, _BootSignal(booted))
    finally:
        _exit_as_forked()


class _BootSignal:
    """The event Dramatiq's worker_process sets when its boot ends, set only if the boot worked.

    ``worker_process`` sets it in a ``finally``, failed or not; while an exception (an import
    error's ``sys.exit``) propagates, ``sys.exc_info()`` shows it, so a failed boot never
    reads as ready to the supervisor in the moment before the process exits.
    """

    def __init__(self, event: Any) -> None:
        self.event = event

    def set(self) -> None:
        if sys.exc_info()[0] is None:
            self.event.set()


def run_fork(
    args: argparse.Namespace, slot: int, path: str, pipe: Any, supervisor_pid: int
) -> None:
    """Body of a fork process (a middleware's ``forks``, e.g. the metrics endpoint)."""
    _die_with(supervisor_pid)
    try:
        cli.fork_process(args, slot, path, pipe)
    finally:
        _exit_as_forked()


def _exit_as_forked() -> None:
    """End like a forked child of ``dramatiq``: threads are joined, atexit handlers do not run.

    A forked child leaves through ``os._exit``; a spawned one would run the application's
    atexit handlers (a producer's ledger flush, up to 30 s against a database that is down)
    after the worker has already stopped and flushed.
    """
    atexit._clear()


class Child:
    """A started process of a slot, with the read end of its logging pipe.

    Parameters:
      kind: ``worker`` or ``fork``.
      slot: the slot's number (Dramatiq's worker or fork id).
    """

    def __init__(
        self,
        kind: str,
        slot: int,
        process: multiprocessing.process.BaseProcess,
        logs: Connection,
        booted: Any | None,
    ) -> None:
        self.kind = kind
        self.slot = slot
        self.process = process
        self.logs = logs
        self.booted = booted
        self.started = time.monotonic()
        self.ready_at: float | None = None
        self.stopping = False
        self.term_pending = False

    @classmethod
    def worker(cls, args: argparse.Namespace, slot: int, canteen: Any) -> Child:
        read, write = _spawn.Pipe(duplex=False)
        booted = _spawn.Event()
        process = _spawn.Process(
            target=run_worker,
            name=f"worker-{slot}",
            daemon=False,
            args=(args, slot, StreamablePipe(write), canteen, booted, os.getpid()),
        )
        return cls._start("worker", slot, process, read, write, booted)

    @classmethod
    def fork(cls, args: argparse.Namespace, slot: int, path: str) -> Child:
        read, write = _spawn.Pipe(duplex=False)
        process = _spawn.Process(
            target=run_fork,
            name=f"fork-{slot}",
            daemon=False,
            args=(args, slot, path, StreamablePipe(write), os.getpid()),
        )
        return cls._start("fork", slot, process, read, write, None)

    @classmethod
    def _start(
        cls,
        kind: str,
        slot: int,
        process: multiprocessing.process.BaseProcess,
        read: Connection,
        write: Connection,
        booted: Any | None,
    ) -> Child:
        # Blocked while spawning, as Dramatiq's main does: the child inherits the mask and
        # unblocks once its handlers are set, so a stop cannot kill it half-booted.
        cli.try_block_signals()
        try:
            process.start()
        finally:
            cli.try_unblock_signals()
        write.close()
        return cls(kind, slot, process, read, booted)

    @property
    def pid(self) -> int:
        return int(self.process.pid or 0)

    @property
    def exitcode(self) -> int | None:
        return self.process.exitcode

    def alive(self) -> bool:
        return self.process.exitcode is None

    def is_ready(self) -> bool:
        """A worker that finished booting and still runs (a fork counts as ready at once)."""
        return self.alive() and (self.booted is None or self.booted.is_set())

    def terminate(self) -> None:
        """SIGTERM now, or once booted: Dramatiq's worker_process unblocks signals before its
        handler can log, so a SIGTERM that lands mid-boot kills the boot with a NameError."""
        self.stopping = True
        self.term_pending = self.booted is not None and not self.booted.is_set()
        if not self.term_pending:
            self.signal(signal.SIGTERM)

    def deliver_pending(self) -> None:
        if self.term_pending and (self.booted is None or self.booted.is_set() or not self.alive()):
            self.term_pending = False
            self.signal(signal.SIGTERM)

    def signal(self, signum: int) -> None:
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:
            pass

    def describe_exit(self) -> str:
        code = self.exitcode
        if code is not None and code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exit code {code}"
