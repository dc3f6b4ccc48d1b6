"""One multiprocess metrics directory per ``dramatiq`` instance, stale ones swept at start.

Under ``dramatiq actors --processes N`` every worker process writes its own files; the
exposition fork of the same instance merges them, so one scrape sees all N processes. The
directory is named after the instance's main process (pid and start time, so a reused pid is
a different instance): a second instance on the host never mixes with the first, and a
restarted instance starts from empty files instead of adding to the old ones. Directories
whose main process is gone are deleted by the next instance that starts on the host.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import sys
import tempfile

PREFIX = "dramatiq-"
BASE_ENV = "SHOPJOBS_METRICS_DIR"
FLUSH_ENV = "SHOPJOBS_METRICS_FLUSH_MS"  # read here, like BASE_ENV: before any metric exists


def base_dir() -> str:
    return os.environ.get(BASE_ENV) or os.path.join(tempfile.gettempdir(), "shopjobs-metrics")


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (/proc), or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            stat = fh.read()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def instance_name(owner_pid: int) -> str:
    return f"{PREFIX}{owner_pid}-{_start_time(owner_pid) or 0}"


def instance_dir(owner_pid: int, base: str | None = None) -> str:
    """The directory of the instance whose main process is ``owner_pid``."""
    return os.path.join(base or base_dir(), instance_name(owner_pid))


def _alive(name: str) -> bool:
    try:
        pid, started = name.removeprefix(PREFIX).split("-", 1)
        return _start_time(int(pid)) == started
    except ValueError:
        return False


def sweep(base: str, keep: str) -> list[str]:
    """Delete the directories of instances whose main process is gone; returns their names."""
    removed = []
    for name in os.listdir(base):
        if name.startswith(PREFIX) and name != keep and not _alive(name):
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)
            removed.append(name)
    return removed


def in_dramatiq_worker() -> bool:
    """True in a worker process forked by the ``dramatiq`` command (not in its main process)."""
    command = os.path.basename(sys.argv[0]) if sys.argv else ""
    launched = command == "dramatiq" or sys.argv[0].endswith(os.path.join("dramatiq", "__main__.py"))
    return launched and multiprocessing.parent_process() is not None


def enable(path: str, flush_ms: int = 1000) -> None:
    """Make every metric created from now on in this process write to ``path``, in batches
    (``jobcore.metrics.batched``: memory first, the files every ``flush_ms`` and at exit);
    0 writes every update at once (prometheus-client's own value: the way to compare)."""
    from prometheus_client import values

    from jobcore.metrics.batched import BatchedValue

    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    values.ValueClass = BatchedValue(flush_ms / 1000) if flush_ms else values.MultiProcessValue()


def setup() -> str | None:
    """In a dramatiq worker process: create (and sweep around) the instance's directory, enable it."""
    if not in_dramatiq_worker():
        return None
    base = base_dir()
    path = instance_dir(os.getppid(), base)
    os.makedirs(path, exist_ok=True)
    sweep(base, keep=os.path.basename(path))
    enable(path, int(os.environ.get(FLUSH_ENV) or 1000))
    return path
