"""Real ``dramatiq`` worker processes, started and stopped by PID (tests and the main job)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_pause = threading.Event()
DRAMATIQ = os.path.join(os.path.dirname(sys.executable), "dramatiq")


class Worker:
    """``dramatiq <modules>`` run from the repository root, in its own session."""

    def __init__(
        self,
        modules: tuple[str, ...] = ("actors",),
        processes: int = 1,
        threads: int = 4,
        queues: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        log_path: str | None = None,
    ) -> None:
        self.log_path = log_path or tempfile.NamedTemporaryFile(prefix="worker-", suffix=".log", delete=False).name  # noqa: SIM115  (only its name)
        command = [DRAMATIQ, *modules, "--processes", str(processes), "--threads", str(threads),
                   "--worker-shutdown-timeout", "10000"]
        if queues:
            command += ["--queues", *queues]
        self.processes = processes
        self._log = open(self.log_path, "w")  # noqa: SIM115  (the worker writes it until stop())
        self.proc = subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=self._log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        with open(self.log_path) as fh:
            return fh.read()

    def wait_ready(self, timeout: float = 60) -> Worker:
        """Return once every worker process logged that it is ready; raise if it died or hung."""
        deadline = time.monotonic() + timeout
        while self.log().count("is ready for action") < self.processes:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker not ready after {timeout}s:\n{self.log()[-3000:]}")
            _pause.wait(0.05)
        return self

    def alive(self) -> bool:
        return self.proc.poll() is None

    def child_pids(self) -> list[int]:
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.pid)], capture_output=True, text=True, check=False)
        return [int(p) for p in out.stdout.split()]

    def kill_hard(self) -> None:
        """SIGKILL the worker's whole session (main process and its worker processes)."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(30)
        self._log.close()

    def stop(self, timeout: float = 30) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.pid, signal.SIGKILL)  # anything of this worker's own session left
        except ProcessLookupError:
            pass
        self.proc.wait(10)
        self._log.close()
