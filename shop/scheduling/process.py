"""Run ``scheduler.py`` as its own process, for integration tests and the main job.

It starts in its own session (a Ctrl-C aimed at the caller does not hit it first), exits by
itself if its parent dies, and is stopped or killed by its PID only.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import IO

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
READY = "scheduler ready"
_pause = threading.Event()


class SchedulerProcess:
    """A running scheduler: its PID, log, ``alive()``, ``stop()`` and ``kill_hard()``."""

    def __init__(
        self, proc: subprocess.Popen[bytes], log_path: str, log: IO[bytes], offset: int
    ) -> None:
        self._proc = proc
        self._log = log
        self._offset = offset
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self._proc.pid

    def alive(self) -> bool:
        return self._proc.poll() is None

    def log(self) -> str:
        """What this process logged (a reused log file's older lines left out)."""
        with open(self.log_path, "rb") as fh:
            fh.seek(self._offset)
            return fh.read().decode("utf-8", "replace")

    def wait_ready(self, timeout_s: float) -> SchedulerProcess:
        """Return once the READY line is logged; kill it and raise if it exits or hangs."""
        deadline = time.monotonic() + timeout_s
        while READY not in self.log():
            if not self.alive():
                raise RuntimeError(
                    f"scheduler exited with {self._proc.returncode}:\n{self.log()[-3000:]}"
                )
            if time.monotonic() > deadline:
                self.kill_hard()
                raise RuntimeError(f"scheduler not ready after {timeout_s}s:\n{self.log()[-3000:]}")
            _pause.wait(0.05)
        return self

    def stop(self, timeout_s: float = 10.0) -> int | None:
        """SIGTERM (it finishes its step and releases the lock), then SIGKILL if it hangs."""
        if self.alive():
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout_s)
        self._log.close()
        return self._proc.returncode

    def kill_hard(self) -> None:
        """SIGKILL this PID: no cleanup, the lock goes when PostgreSQL sees the socket close."""
        if self.alive():
            self._proc.kill()
        self._proc.wait(10)
        self._log.close()

    def __repr__(self) -> str:
        return f"<SchedulerProcess pid={self.pid}>"


def start_scheduler(
    extra_env: dict[str, str] | None = None,
    log_path: str | None = None,
    tick_s: float = 1.0,
    ready_timeout_s: float = 30.0,
) -> SchedulerProcess:
    """Start ``python scheduler.py --tick S`` with the caller's environment plus ``extra_env``.

    Parameters:
      extra_env: e.g. ``{"SHOPJOBS_SCHEDULE_MODULE": "tests.support.scheduled_actors"}``.
      log_path: where its log goes (appended); a temporary file when None.
      tick_s: seconds between leadership checks.
      ready_timeout_s: how long to wait for its "scheduler ready" line.
    """
    if log_path is None:
        fd, log_path = tempfile.mkstemp(prefix="scheduler-", suffix=".log")
        os.close(fd)
    log = open(log_path, "ab")  # noqa: SIM115  (SchedulerProcess closes it)
    offset = log.tell()
    command = [
        sys.executable,
        "scheduler.py",
        "--tick",
        str(tick_s),
        "--parent-pid",
        str(os.getpid()),
    ]
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, **(extra_env or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    return SchedulerProcess(proc, log_path, log, offset).wait_ready(ready_timeout_s)
