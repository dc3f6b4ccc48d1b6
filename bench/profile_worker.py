"""Where a worker's CPU goes: py-spy on the ``dramatiq`` instance of one ``bench.run_shopjobs`` run.

Runs ``python -m bench.run_shopjobs N``, attaches ``py-spy record --subprocesses`` to its worker
instance once it starts (non-blocking sampling, so the run is not paused; only the thread holding the GIL, so a
sample is CPU spent in Python, not a wait), and attributes every sample to one component: the deepest frame of the stack that belongs to a known component
(a middleware, the ledger, metrics, logs, ...), else the library the thread was in. Prints the
share of samples per component and the top frames of each; ``--out`` also keeps py-spy's raw
(collapsed) stacks, which any flame-graph tool reads.

usage: python -m bench.profile_worker [--n 40000] [--rate 97] [--out docs/perf/stacks.txt]
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import time

from bench import _anchor

# (component, substring of a frame's file path); the first match from the leaf upwards wins,
# so put the specific ones (the project's modules) before the libraries they call.
COMPONENTS: tuple[tuple[str, str], ...] = (
    ("metrics", "jobcore/metrics/"),
    ("metrics", "middleware/metrics.py"),
    ("ledger", "jobcore/ledger/"),
    ("ledger (JobStatus)", "middleware/job_status.py"),
    ("acks (deferred)", "jobcore/acks.py"),
    ("logs", "jobcore/logs.py"),
    ("logs", "middleware/log_context.py"),
    ("redaction", "jobcore/redaction.py"),
    ("crash guard", "middleware/crash_guard.py"),
    ("cancellations", "middleware/cancellations.py"),
    ("cancellations", "jobcore/cancellations.py"),
    ("dead letters", "middleware/dead_letters.py"),
    ("worker registry", "middleware/worker_registry.py"),
    ("worker registry", "jobcore/worker_registry.py"),
    ("db sessions", "middleware/db_sessions.py"),
    ("compensation", "middleware/compensation.py"),
    ("outbox", "jobcore/outbox.py"),
    ("results", "jobcore/ledger/results.py"),
    ("bench actor", "bench/shop_actors.py"),
    ("bench actor", "benchlib.py"),
    ("prometheus_client", "prometheus_client/"),
    ("dramatiq middleware (stock)", "dramatiq/middleware/"),
    ("dramatiq rabbitmq broker", "dramatiq/brokers/rabbitmq.py"),
    ("dramatiq worker", "dramatiq/worker.py"),
    ("dramatiq (other)", "dramatiq/"),
    ("pika (AMQP)", "pika/"),
    ("sqlalchemy/psycopg2", "sqlalchemy/"),
    ("sqlalchemy/psycopg2", "psycopg2/"),
    ("json", "json/"),
    ("logging", "logging/"),
)


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    if int(fh.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except OSError:
                pass
    return out


def _find_instance(root: int, timeout: float) -> int:
    """The pid of the ``dramatiq`` main process started by the bench run ``root``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in _children(root):
            try:
                with open(f"/proc/{child}/cmdline", "rb") as fh:
                    cmdline = fh.read()
            except OSError:
                continue
            if b"bench.shop_actors" in cmdline:
                return child
        time.sleep(0.05)
    raise SystemExit("the bench run started no dramatiq instance")


def classify(frames: list[str]) -> tuple[str, str]:
    """(component, frame) of a stack given root first: the deepest frame of a known component."""
    for frame in reversed(frames):
        for component, needle in COMPONENTS:
            if needle in frame:
                return component, frame
    return "other", frames[-1] if frames else "?"


def attribute(raw_path: str) -> tuple[int, dict[str, int], dict[str, collections.Counter[str]]]:
    """Samples per component and per (component, frame), from py-spy's raw output."""
    per: dict[str, int] = collections.Counter()
    frames_of: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    total = 0
    with open(raw_path) as fh:
        for line in fh:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not count.isdigit():
                continue
            parts = stack.split(";")
            if sum(p.startswith("process ") for p in parts) < 2 or "_find_and_load" in stack:
                continue  # the instance's main process, and imports at boot: not per-job work
            frames = [p for p in parts if not p.startswith("process ")]
            component, frame = classify(frames)
            n = int(count)
            per[component] += n
            frames_of[component][frame] += n
            total += n
    return total, per, frames_of


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=40000)
    ap.add_argument("--rate", type=int, default=97, help="py-spy samples per second")
    ap.add_argument("--out", help="keep py-spy's raw stacks here")
    ap.add_argument("--top", type=int, default=4)
    a = ap.parse_args()
    spy = shutil.which("py-spy", path=os.path.dirname(sys.executable)) or shutil.which("py-spy")
    if spy is None:
        raise SystemExit("py-spy not found: pip install py-spy (it is in the test extras)")
    raw = a.out or os.path.join(tempfile.mkdtemp(prefix="shopjobs-prof-"), "stacks.txt")
    run = subprocess.Popen(
        [sys.executable, "-m", "bench.run_shopjobs", str(a.n)],
        cwd=_anchor.ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    instance = _find_instance(run.pid, timeout=600)
    spy_proc = subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(instance),
            "--subprocesses",
            "--nonblocking",
            "--gil",
            "--rate",
            str(a.rate),
            "--format",
            "raw",
            "--output",
            raw,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    out, _ = run.communicate()
    spy_proc.wait(timeout=60)
    sys.stdout.write(out)
    total, per, frames_of = attribute(raw)
    print(
        f"PROFILE GIL-holding samples in worker processes: {total} (py-spy {a.rate}/s, raw stacks: {raw})"
    )
    for component, n in sorted(per.items(), key=lambda kv: -kv[1]):
        print(f"{100 * n / max(total, 1):5.1f}%  {component}")
        for frame, m in frames_of[component].most_common(a.top):
            print(f"         {100 * m / max(total, 1):5.1f}%  {frame}")


if __name__ == "__main__":
    main()
