"""Real worker groups (``shopjobs worker``, the supervisor), started and stopped by PID.

Tests, the main job and the soak start workers the way production does: the supervisor and
its Dramatiq worker processes, in a session of their own so a hard kill takes all of them.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_pause = threading.Event()
SHOPJOBS = os.path.join(os.path.dirname(sys.executable), "shopjobs")
_STARTED = re.compile(r"started (?:replacement |successor )?worker process (\d+) \(pid (\d+)\)")
_DIED = re.compile(r"worker process \d+ \(pid (\d+)\) died after")
GROUP_READY = "worker group ready"


class Worker:
    """``shopjobs worker <modules>`` run from the repository root, in its own session.

    Parameters:
      supervisor_args: extra options of the supervisor (``--restart-stable-s 5``, ...).
      prefix: a command the supervisor runs under (``ip netns exec <ns>``, which execs it, so
        the pid stays the supervisor's).
    """

    def __init__(
        self,
        modules: tuple[str, ...] = ("actors",),
        processes: int = 1,
        threads: int = 4,
        queues: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        log_path: str | None = None,
        supervisor_args: tuple[str, ...] = (),
        shutdown_timeout_ms: int = 10000,
        prefix: tuple[str, ...] = (),
    ) -> None:
        self.log_path = (
            log_path
            or tempfile.NamedTemporaryFile(prefix="worker-", suffix=".log", delete=False).name  # noqa: SIM115  (only its name)
        )
        command = [
            *prefix,  # e.g. ``ip netns exec <ns>``: the group runs as a host of its own
            SHOPJOBS,
            "worker",
            *modules,
            "--processes",
            str(processes),
            "--threads",
            str(threads),
            "--worker-shutdown-timeout",
            str(shutdown_timeout_ms),
            *supervisor_args,
        ]
        if queues:
            command += ["--queues", *queues]
        self.processes = processes
        self._log = open(self.log_path, "w")  # noqa: SIM115  (the worker writes it until stop())
        self.proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        """The supervisor's pid (the group's main process, which keys its metrics directory)."""
        return self.proc.pid

    def log(self) -> str:
        with open(self.log_path, errors="replace") as fh:
            return fh.read()

    def wait_ready(self, timeout: float = 60) -> Worker:
        """Return once the supervisor logged that every worker process is ready; raise if it died."""
        deadline = time.monotonic() + timeout
        while GROUP_READY not in self.log():
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"worker exited with {self.proc.returncode}:\n{self.log()[-3000:]}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker not ready after {timeout}s:\n{self.log()[-3000:]}")
            _pause.wait(0.05)
        return self

    def alive(self) -> bool:
        return self.proc.poll() is None

    def child_pids(self) -> list[int]:
        out = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(self.pid)],
            capture_output=True,
            text=True,
            check=False,
        )
        return [int(p) for p in out.stdout.split()]

    def worker_pids(self) -> dict[int, int]:
        """Live worker processes by slot: {slot: pid}, from the supervisor's log and ``ps``."""
        live = set(self.child_pids())
        slots: dict[int, int] = {}
        for slot, pid in _STARTED.findall(self.log()):
            if int(pid) in live:
                slots[int(slot)] = int(pid)
        return slots

    def deaths(self) -> int:
        """Worker processes the supervisor saw die and replaced."""
        return len(_DIED.findall(self.log()))

    def kill_worker_process(self, slot: int | None = None) -> int:
        """SIGKILL one worker process (the lowest slot unless given); returns its pid."""
        slots = self.worker_pids()
        pid = slots[slot if slot is not None else min(slots)]
        os.kill(pid, signal.SIGKILL)
        return pid

    def wait_replaced(self, pid: int, timeout: float = 60) -> int:
        """Wait until the slot of dead ``pid`` runs a new ready process; returns the new pid."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = self.log()
            slot = next((int(s) for s, p in _STARTED.findall(log) if int(p) == pid), None)
            after = log.rsplit(f"(pid {pid}) died after", 1)
            if slot is not None and len(after) == 2:
                match = re.search(rf"worker process {slot} \(pid (\d+)\) is ready", after[1])
                if match:
                    return int(match.group(1))
            if self.proc.poll() is not None:
                raise RuntimeError(f"supervisor exited with {self.proc.returncode}:\n{log[-3000:]}")
            _pause.wait(0.05)
        raise RuntimeError(
            f"worker process {pid} not replaced after {timeout}s:\n{self.log()[-3000:]}"
        )

    def reload(self) -> None:
        """SIGHUP: the supervisor replaces its processes one at a time."""
        self.proc.send_signal(signal.SIGHUP)

    def kill_hard(self) -> None:
        """SIGKILL the worker's whole session (supervisor and its worker processes)."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(30)
        self._log.close()

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM (graceful), then SIGKILL whatever of its session is left; the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        code = self.proc.poll()
        try:
            os.killpg(self.pid, signal.SIGKILL)  # anything of this worker's own session left
        except ProcessLookupError:
            pass
        self.proc.wait(10)
        self._log.close()
        return code
