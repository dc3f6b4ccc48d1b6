"""The supervisor's main process: keeps N Dramatiq worker processes and the forks running.

Dramatiq's own main process shuts the whole group down when one worker process dies (its
issue #505), so one crash stops every other process's work in flight and nothing restarts
it. Here a dead process is replaced alone while the others keep consuming, as gunicorn's
arbiter and Celery's prefork pool do; restarts back off and a crash loop of the whole group
ends the supervisor with ``RET_CRASH_LOOP`` (see ``policy``). Signals follow ``dramatiq``:
SIGTERM or SIGINT stop every process gracefully (in-flight jobs finish or are handed back; a
second signal kills), SIGHUP reloads by replacing the processes one at a time, each successor
ready before its predecessor is told to stop, so the group never runs below strength.

The main process is one thread: it waits on the children's logging pipes, their exit
sentinels and a wake-up socket for signals at once, so there is no lock to inherit and no
race between a death and a stop.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from typing import Any, TextIO

from dramatiq import cli
from dramatiq.canteen import Canteen, canteen_get

from jobcore.metrics import multiproc
from jobcore.supervisor.metrics import SupervisorMetrics
from jobcore.supervisor.policy import RestartPolicy
from jobcore.supervisor.process import Child, _spawn

RET_CRASH_LOOP = (
    5  # beside Dramatiq's RET_OK 0, RET_KILLED 1, RET_IMPORT 2, RET_CONNECT 3, RET_PIDFILE 4
)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
logger = logging.getLogger("jobcore.supervisor")


@dataclasses.dataclass
class Slot:
    """A place in the group: its current process, a successor while reloading, its restarts."""

    kind: str
    number: int
    path: str = ""  # a fork's function
    child: Child | None = None
    successor: Child | None = None
    failures: int = 0
    restart_at: float | None = None
    replace_on_exit: bool = False


class Supervisor:
    """Parameters:
    args: Dramatiq's own arguments (``dramatiq.cli.make_argument_parser``): broker module,
      modules, processes, threads, queues, forks, timeouts, logging options.
    policy: restart backoff and crash-loop detection.
    out: where the children's log lines go (the supervisor's own stream or ``--log-file``).
    """

    def __init__(self, args: argparse.Namespace, policy: RestartPolicy, out: TextIO) -> None:
        self.args = args
        self.policy = policy
        self.out = out
        self.workers = [Slot("worker", n) for n in range(args.processes)]
        self.forks: list[Slot] | None = None  # made once the workers booted (their forks known)
        self.retiring: list[Child] = []
        self.pipes: list[Connection] = []
        self.canteen: Any = _spawn.Value(Canteen)
        self.started = time.monotonic()
        self.group_ready = False
        self.stopping = False
        self.exit_code: int | None = None  # decided by a fatal event (crash loop, import error)
        self.stopped_codes: list[int] = []
        self.reload_queue: list[Slot] = []
        self._stop_signals = 0
        self._forced = False
        self._reload_requested = False
        self._wake_r, self._wake_w = socket.socketpair()
        self.metrics: SupervisorMetrics | None = None

    # --- running -----------------------------------------------------------------------------

    def run(self) -> int:
        """Start the group, supervise it until it is stopped; returns the exit code."""
        self._enable_metrics()
        previous = self._install_signals()
        try:
            logger.info(
                "supervisor %d starting %d worker processes x %d threads (%s)",
                os.getpid(),
                self.args.processes,
                self.args.threads,
                self.args.broker,
            )
            for slot in self.workers:
                child = self._start(slot)
                logger.info("started worker process %d (pid %d)", slot.number, child.pid)
            while not (self.stopping and not self._live()):
                self._step()
        finally:
            self._restore_signals(previous)
            self._drain_all()
        code = self._final_code()
        logger.info("supervisor %d stopped (exit code %d)", os.getpid(), code)
        return code

    def _step(self) -> None:
        self._wait(self._timeout())
        for child in self._children():
            child.deliver_pending()
        self._reap()
        if self._stop_signals and not self.stopping:
            self._begin_stop("a stop signal", None)
        elif self._stop_signals > 1 and not self._forced:
            # a second stop: Dramatiq's children exit at once on their second signal
            self._forced = True
            logger.warning("second stop signal: telling every process to exit now")
            for child in self._live():
                child.signal(signal.SIGTERM)
        if self.stopping:
            return
        if self.policy.crash_looping([slot.failures for slot in self.workers]):
            self._crash_loop()
            return
        self._note_readiness()
        self._boot_forks()
        if self._reload_requested:
            self._reload_requested = False
            self._begin_reload()
        self._advance_reload()
        self._restart_due()

    def _timeout(self) -> float:
        now = time.monotonic()
        due = [s.restart_at - now for s in self._slots() if s.restart_at is not None]
        return max(0.0, min([0.25, *due]))

    def _slots(self) -> list[Slot]:
        return self.workers + (self.forks or [])

    def _children(self) -> list[Child]:
        found = [c for s in self._slots() for c in (s.child, s.successor) if c is not None]
        return found + self.retiring

    def _live(self) -> list[Child]:
        return [c for c in self._children() if c.alive()]

    # --- signals and waiting -----------------------------------------------------------------

    def _install_signals(self) -> dict[int, Any]:
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        previous: dict[int, Any] = {
            sig: signal.signal(sig, self._on_signal) for sig in cli.HANDLED_SIGNALS
        }
        previous[-1] = signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        return previous

    def _restore_signals(self, previous: dict[int, Any]) -> None:
        signal.set_wakeup_fd(previous.pop(-1))
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        self._wake_r.close()
        self._wake_w.close()

    def _on_signal(self, signum: int, frame: object) -> None:
        if signum == getattr(signal, "SIGHUP", None):
            self._reload_requested = True
            return
        self._stop_signals += 1

    def _wait(self, timeout: float) -> None:
        sentinels = [c.process.sentinel for c in self._children() if c.alive()]
        ready = wait([self._wake_r, *self.pipes, *sentinels], timeout)
        if self._wake_r in ready:
            try:
                while self._wake_r.recv(512):
                    pass
            except BlockingIOError:
                pass
        for conn in self.pipes[:]:
            if conn in ready:
                self._pump(conn)

    def _pump(self, conn: Connection) -> None:
        """Copy a child's log lines to the output; a closed pipe (the child is gone) is dropped."""
        try:
            while conn.poll():
                self.out.write(conn.recv_bytes().decode("utf-8", errors="replace"))
            self.out.flush()
        except (EOFError, OSError):
            conn.close()
            self.pipes.remove(conn)

    def _drain_all(self) -> None:
        for conn in self.pipes[:]:
            self._pump(conn)
            if not conn.closed:
                conn.close()
        self.pipes.clear()

    # --- starting and replacing --------------------------------------------------------------

    def _start(self, slot: Slot, *, successor: bool = False) -> Child:
        if slot.kind == "worker":
            child = Child.worker(self.args, slot.number, self.canteen)
        else:
            child = Child.fork(self.args, slot.number, slot.path)
        self.pipes.append(child.logs)
        slot.restart_at = None
        if successor:
            slot.successor = child
        else:
            slot.child = child
        self._set_backoff_gauge()
        return child

    def _restart_due(self) -> None:
        now = time.monotonic()
        for slot in self._slots():
            if slot.restart_at is None or slot.restart_at > now:
                continue
            if slot.child is None and slot.successor is not None:  # died while its successor booted
                slot.child, slot.successor, slot.restart_at = slot.successor, None, None
                continue
            reloading = slot.child is not None and slot in self.reload_queue[:1]
            child = self._start(slot, successor=reloading)
            what = "successor" if reloading else "replacement"
            logger.info(
                "started %s %s process %d (pid %d)", what, slot.kind, slot.number, child.pid
            )

    def _reap(self) -> None:
        now = time.monotonic()
        for child in self.retiring[:]:
            if not child.alive():
                self.retiring.remove(child)
                self.stopped_codes.append(child.exitcode or 0)
                logger.info(
                    "%s process %d (pid %d) stopped: %s",
                    child.kind,
                    child.slot,
                    child.pid,
                    child.describe_exit(),
                )
        for slot in self._slots():
            for attr in ("child", "successor"):
                child = getattr(slot, attr)
                if child is None or child.alive():
                    continue
                setattr(slot, attr, None)
                if self.stopping or child.stopping:
                    self.stopped_codes.append(child.exitcode or 0)
                    if slot.replace_on_exit and not self.stopping:
                        slot.replace_on_exit, slot.restart_at = False, now
                    continue
                if slot.kind == "fork" and child.exitcode == 0:
                    logger.info("fork process %d (%s) finished", slot.number, slot.path)
                    continue
                self._died(slot, child, now)

    def _died(self, slot: Slot, child: Child, now: float) -> None:
        lived = now - child.started
        booted = child.ready_at is not None
        if child.kind == "worker" and not self.group_ready and child.exitcode == cli.RET_IMPORT:
            logger.critical(
                "worker process %d (pid %d) could not start (an import error or a "
                "configuration RabbitMQ refused: its log says which); stopping",
                slot.number,
                child.pid,
            )
            self._begin_stop("a start error", cli.RET_IMPORT)
            return
        slot.failures = self.policy.failures_after_death(slot.failures, lived)
        delay = self.policy.delay(slot.failures)
        slot.restart_at = now + delay
        cause = ("signal" if (child.exitcode or 0) < 0 else "exit") if booted else "boot"
        if self.metrics is not None:
            self.metrics.restarts.labels(slot.kind, cause).inc()
        self._set_backoff_gauge()
        logger.warning(
            "%s process %d (pid %d) died after %.1fs (%s%s); the other processes keep working; "
            "restarting it in %.1fs (death %d in a row)",
            slot.kind,
            slot.number,
            child.pid,
            lived,
            child.describe_exit(),
            "" if booted else ", before it was ready",
            delay,
            slot.failures,
        )

    def _note_readiness(self) -> None:
        now = time.monotonic()
        for slot in self._slots():
            for child in (slot.child, slot.successor):
                if child is None or child.ready_at is not None or not child.is_ready():
                    continue
                child.ready_at = now
                if self.group_ready and slot.kind == "worker":
                    logger.info(
                        "%s process %d (pid %d) is ready", slot.kind, slot.number, child.pid
                    )
            child = slot.child
            if child is not None and slot.failures and now - child.started >= self.policy.stable_s:
                slot.failures = 0
                self._set_backoff_gauge()
        if not self.group_ready and all(s.child and s.child.ready_at for s in self.workers):
            self.group_ready = True
            logger.info(
                "worker group ready: %d processes x %d threads (supervisor pid %d)",
                len(self.workers),
                self.args.threads,
                os.getpid(),
            )

    def _boot_forks(self) -> None:
        """Start the middleware's forks once every worker booted, as Dramatiq does (#297, #701)."""
        if self.forks is not None:
            return
        waited = time.monotonic() - self.started
        booted = all(s.child is not None and s.child.is_ready() for s in self.workers)
        if (
            not (booted and self.canteen.initialized)
            and waited < self.args.worker_fork_timeout / 1000
        ):
            return
        paths = [*self.args.forks, *canteen_get(self.canteen)]
        self.forks = [Slot("fork", n, path=path) for n, path in enumerate(paths)]
        for slot in self.forks:
            child = self._start(slot)
            logger.info("started fork process %d (pid %d): %s", slot.number, child.pid, slot.path)

    # --- reload, stop, crash loop ------------------------------------------------------------

    def _begin_reload(self) -> None:
        logger.info("reloading: replacing %d worker processes one at a time", len(self.workers))
        self.reload_queue = [s for s in self.workers if s.child is not None]
        for slot in self.forks or []:
            slot.replace_on_exit = True
            if slot.child is not None:
                slot.child.terminate()

    def _advance_reload(self) -> None:
        """Start the next slot's successor; once it is ready, stop its predecessor."""
        while self.reload_queue:
            slot = self.reload_queue[0]
            if slot.child is None and slot.successor is None:
                self.reload_queue.pop(0)  # it died meanwhile; its replacement has the new code
                continue
            if slot.successor is None:
                if slot.restart_at is None:
                    slot.restart_at = time.monotonic()
                return
            if slot.successor.ready_at is None:
                return
            old, slot.child, slot.successor = slot.child, slot.successor, None
            if old is not None:
                old.terminate()
                self.retiring.append(old)
            self.reload_queue.pop(0)
            if not self.reload_queue:
                logger.info("reload done: %d worker processes replaced", len(self.workers))

    def _begin_stop(self, why: str, code: int | None) -> None:
        self.stopping = True
        self.reload_queue.clear()
        if code is not None and self.exit_code is None:
            self.exit_code = code
        logger.info(
            "stopping the worker group (%s): SIGTERM to %d processes", why, len(self._live())
        )
        for slot in self._slots():
            slot.restart_at = None
        for child in self._live():
            child.terminate()

    def _crash_loop(self) -> None:
        logger.critical(
            "worker group is crash-looping: every worker process died %d times in a row, each "
            "within %.0fs of its start; giving up (exit code %d) so the service manager and "
            "alerts see it. Check the workers' log above for the cause.",
            self.policy.crash_loop_after,
            self.policy.stable_s,
            RET_CRASH_LOOP,
        )
        if self.metrics is not None:
            self.metrics.crash_looping.set(1)
        self._begin_stop("crash loop", RET_CRASH_LOOP)

    def _final_code(self) -> int:
        if self.exit_code is not None:
            return self.exit_code
        bad = [code for code in self.stopped_codes if code]
        if not bad:
            return cli.RET_OK
        return cli.RET_KILLED if bad[0] < 0 else bad[0]

    # --- metrics -----------------------------------------------------------------------------

    def _enable_metrics(self) -> None:
        """This group's multiprocess directory, keyed by this process, for it and its children."""
        os.environ[multiproc.SUPERVISOR_ENV] = str(os.getpid())
        base = multiproc.base_dir()
        path = multiproc.instance_dir(os.getpid(), base)
        os.makedirs(path, exist_ok=True)
        multiproc.sweep(base, keep=os.path.basename(path))
        multiproc.enable(path)
        self.metrics = SupervisorMetrics()
        self.metrics.crash_looping.set(0)

    def _set_backoff_gauge(self) -> None:
        if self.metrics is None:
            return
        now = time.monotonic()
        waits = [s.restart_at - now for s in self._slots() if s.restart_at is not None]
        self.metrics.backoff.set(max([0.0, *waits]))


def supervise(
    args: argparse.Namespace,
    policy: RestartPolicy,
    out: TextIO,
    make: Callable[..., Supervisor] = Supervisor,
) -> int:
    """Run a supervisor with Dramatiq's pid-file handling around it; returns the exit code."""
    if args.pid_file:
        try:
            cli.setup_pidfile(args.pid_file)
        except RuntimeError as exc:
            logger.critical("%s", exc)
            return cli.RET_PIDFILE
    try:
        return make(args, policy, out).run()
    finally:
        if args.pid_file:
            cli.remove_pidfile(args.pid_file, logger)
