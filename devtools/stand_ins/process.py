"""Run a stand-in as its own process, for integration tests and the main job.

A separate process, not a thread, so the shop talks to it over a real socket and a hung
request in the stand-in can never stall the caller. It starts in its own session (a Ctrl-C
aimed at the test run does not hit it first) and exits by itself if its parent dies.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from types import TracebackType
from typing import IO, Any, Self, TypeVar

import httpx

NAMES = ("payments", "warehouse", "carrier", "images", "prices")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ADMIN_TIMEOUT = httpx.Timeout(5.0, connect=2.0)


class StandInError(RuntimeError):
    """A stand-in did not start; the message carries the tail of its log."""


class StandIn:
    """A running stand-in process: its URL, PID, admin helpers and ``stop()``."""

    def __init__(self, name: str, url: str, proc: subprocess.Popen[bytes], log: IO[bytes]) -> None:
        self.name = name
        self.url = url
        self._proc = proc
        self._log = log

    @property
    def pid(self) -> int:
        return self._proc.pid

    def alive(self) -> bool:
        return self._proc.poll() is None

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        """Call an admin endpoint (``/_admin/...``, never faulted) and return its JSON."""
        response = httpx.request(method, f"{self.url}{path}", json=body, timeout=ADMIN_TIMEOUT)
        response.raise_for_status()
        return response.json()

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        """E.g. ``set_faults(mode="http_500", rate=0.5, paths=["/v1/charges"])``."""
        result: dict[str, Any] = self.admin("POST", "/_admin/faults", faults)
        return result

    def clear_faults(self) -> dict[str, Any]:
        return self.set_faults(mode="none")

    def faults(self) -> dict[str, Any]:
        result: dict[str, Any] = self.admin("GET", "/_admin/faults")
        return result

    def reset(self) -> None:
        """Forget all recorded state and clear faults."""
        self.admin("POST", "/_admin/reset")

    def ledger(self) -> dict[str, Any]:
        result: dict[str, Any] = self.admin("GET", "/_admin/ledger")
        return result

    def concurrency(self) -> dict[str, Any]:
        """Calls in flight now, the most at once since the last reset, and their arrival times."""
        result: dict[str, Any] = self.admin("GET", "/_admin/concurrency")
        return result

    def stop(self, timeout_s: float = 5.0) -> int | None:
        """SIGTERM, wait, then SIGKILL this one PID only if it did not exit in time."""
        _terminate(self._proc, timeout_s)
        for stream in (self._proc.stdout, self._log):
            if stream is not None and not stream.closed:
                stream.close()
        return self._proc.returncode

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<StandIn {self.name} {self.url} pid={self.pid}>"


def start_stand_in(
    name: str, port: int = 0, log_path: str | None = None, ready_timeout_s: float = 15.0
) -> StandIn:
    """Start ``python -m devtools.stand_ins.<name> --port N`` and wait for its READY line.

    Parameters:
      name: one of ``NAMES``.
      port: 0 lets the stand-in pick a free port (read back from READY).
      log_path: where its stderr goes (INFO, one line per request); ``None`` keeps only
        warnings, in an anonymous file that is shown if the start fails.
      ready_timeout_s: how long to wait for READY before killing it and raising.
    """
    if name not in NAMES:
        raise ValueError(f"unknown stand-in {name!r}; expected one of {NAMES}")
    return launch(StandIn, name, port=port, log_path=log_path, ready_timeout_s=ready_timeout_s)


S = TypeVar("S", bound=StandIn)


def launch(
    cls: type[S],
    name: str,
    *,
    port: int = 0,
    extra_args: list[str] | None = None,
    log_path: str | None = None,
    ready_timeout_s: float = 15.0,
) -> S:
    """Run ``python -m devtools.stand_ins.<name>`` with ``extra_args`` and wrap it in ``cls`` once it
    printed READY (the SMTP and SMS stand-ins use their own ``StandIn`` subclasses)."""
    # the log outlives this function: StandIn.stop() closes it
    log: IO[bytes] = open(log_path, "a+b") if log_path else tempfile.TemporaryFile()  # noqa: SIM115
    command = [
        sys.executable,
        "-m",
        f"devtools.stand_ins.{name}",
        "--port",
        str(port),
        "--parent-pid",
        str(os.getpid()),
        "--log-level",
        "INFO" if log_path else "WARNING",
        *(extra_args or []),
    ]
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=log,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        url = _read_ready(proc, name, ready_timeout_s)
    except (OSError, EOFError, ValueError) as exc:  # TimeoutError is an OSError
        _terminate(proc, 2.0)
        tail = _tail(log)
        for stream in (proc.stdout, log):
            if stream is not None:
                stream.close()
        raise StandInError(
            f"stand-in {name} did not become ready ({exc}); its log: {tail}"
        ) from None
    return cls(name, url, proc, log)


def _terminate(proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    """SIGTERM, wait, then SIGKILL this one PID only if it did not exit in time."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout_s)


def _read_ready(proc: subprocess.Popen[bytes], name: str, timeout_s: float) -> str:
    """Read stdout up to the READY line, within a deadline and without sleeping."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buffer = b""
    deadline = time.monotonic() + timeout_s
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no READY line within {timeout_s}s")
            if not selector.select(remaining):
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                raise EOFError(f"exited with {proc.wait()} before READY")
            buffer += chunk
    line = buffer.split(b"\n", 1)[0].decode("utf-8", "replace").split()
    if len(line) != 3 or line[0] != "READY" or line[1] != name:
        raise ValueError(f"unexpected first line {' '.join(line)!r}")
    return line[2]


def _tail(log: IO[bytes], size: int = 3000) -> str:
    if log.closed:
        return ""
    log.flush()
    log.seek(0)
    return log.read().decode("utf-8", "replace")[-size:]
