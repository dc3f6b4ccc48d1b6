"""One multiprocess metrics directory per worker group, stale ones swept at start.

Under ``dramatiq actors --processes N`` or the supervisor (``jobcore.supervisor``) every worker
process writes its own files; the exposition fork of the same group merges them, so one scrape
sees all N processes, and a replaced process's counts stay in the sum. The directory is named
after the group's main process (pid and start time, so a reused pid is a different group): a
second group on the host never mixes with the first, and a restarted group starts from empty
files instead of adding to the old ones. Directories whose main process is gone are deleted by
the next group that starts on the host.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import sys
import tempfile

PREFIX = "dramatiq-"
BASE_ENV = "SHOPJOBS_METRICS_DIR"
SUPERVISOR_ENV = "SHOPJOBS_SUPERVISOR_PID"  # set by the supervisor for the processes it starts
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
    """True in a child of a worker group's main process (``dramatiq`` or the supervisor)."""
    if multiprocessing.parent_process() is None:
        return False
    if os.environ.get(SUPERVISOR_ENV) == str(os.getppid()):
        return True
    command = os.path.basename(sys.argv[0]) if sys.argv else ""
    return command == "dramatiq" or sys.argv[0].endswith(os.path.join("dramatiq", "__main__.py"))


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
