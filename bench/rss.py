"""Worker memory over many jobs: the RSS of each worker process, sampled every N jobs.

Starts the full-stack no-op worker of ``bench.run_shopjobs`` (2 processes x 8 threads), sends
it ``--jobs`` messages from a few threads while it runs, and reads each worker process's
VmRSS from /proc every ``--every`` completed jobs (the processes' completion counters). The
figure is the growth after warm-up (the first ``--warmup`` jobs: imports, pools, caches): the
largest RSS of the last quarter of samples against the RSS at the end of warm-up, per
process; the goal is < 5 %.

usage: python -m bench.rss [--jobs 100000] [--every 5000] [--warmup 10000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time

from bench import _anchor
from bench.run_shopjobs import COUNTERS, DB_URL

ROOT = _anchor.ROOT


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def worker_pids() -> list[int]:
    """The instance's worker processes: its children that run jobs (counter files name them)."""
    return sorted(
        int(name)
        for name in os.listdir(COUNTERS)
        if name.isdigit() and os.path.exists(f"/proc/{name}")
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=100_000)
    ap.add_argument("--every", type=int, default=5000)
    ap.add_argument("--warmup", type=int, default=10_000)
    ap.add_argument("--senders", type=int, default=4)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--threads", type=int, default=8)
    a = ap.parse_args()

    os.environ["SHOPJOBS_DATABASE_URL"] = DB_URL
    os.environ["BENCH_COUNTER_DIR"] = COUNTERS
    os.environ.setdefault("SHOPJOBS_LOG_LEVEL", "WARNING")
    import psycopg2
    from benchlib import clear_counters, purge, read_counters, stop_proc

    from shop import dbadmin

    dbadmin.create_database(DB_URL)
    dbadmin.migrate(DB_URL)
    clear_counters(COUNTERS)
    purge("bench_shop", "bench_shop.DQ", "bench_shop.XQ")
    pg = psycopg2.connect(DB_URL.replace("+psycopg2", ""))
    pg.autocommit = True
    pg.cursor().execute("TRUNCATE job_ledger")
    pg.close()

    from bench import shop_actors

    cmd = [
        os.path.join(os.path.dirname(sys.executable), "dramatiq"),
        "bench.shop_actors",
        "--processes",
        str(a.processes),
        "--threads",
        str(a.threads),
        "--queues",
        "bench_shop",
        "--worker-shutdown-timeout",
        "15000",
    ]
    os.makedirs("/tmp/bench_logs", exist_ok=True)
    with open("/tmp/bench_logs/shopjobs_rss_worker.log", "w") as log:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    failures: list[Exception] = []

    def send(part: int) -> None:
        try:
            for i in range(part, a.jobs, a.senders):
                shop_actors.noop.send(i, "order.confirmation")
        except Exception as exc:  # noqa: BLE001  (the main loop reports it and ends the run)
            failures.append(exc)

    senders = [threading.Thread(target=send, args=(k,), daemon=True) for k in range(a.senders)]
    for thread in senders:
        thread.start()
    samples: list[tuple[int, dict[int, int]]] = []
    next_at = a.every
    deadline = time.monotonic() + 1800
    try:
        while True:
            done, _, _ = read_counters(COUNTERS)
            if done >= next_at or done >= a.jobs:
                rss = {pid: rss_kib(pid) for pid in worker_pids()}
                samples.append((done, rss))
                print(
                    f"jobs {done:7d}  RSS MiB "
                    + "  ".join(f"{pid}: {kib / 1024:.1f}" for pid, kib in rss.items()),
                    flush=True,
                )
                next_at = (done // a.every + 1) * a.every
            if done >= a.jobs:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"worker ended or timed out after {done}/{a.jobs} jobs")
            if failures:
                raise SystemExit(f"a sender failed after {done} jobs: {failures[0]!r}")
            time.sleep(0.05)
    finally:
        stop_proc(proc)
        for thread in senders:
            thread.join(10)
    warm = [s for s in samples if s[0] >= a.warmup]
    if len(warm) < 4:
        raise SystemExit("too few samples after warm-up: raise --jobs or lower --every")
    base, tail = warm[0][1], warm[-max(1, len(warm) // 4) :]
    growth = {}
    for pid, kib in base.items():
        late = max(s[1].get(pid, 0) for s in tail)
        growth[pid] = 100.0 * (late - kib) / kib
    worst = max(growth.values())
    print(
        f"RESULT name=worker_rss_growth jobs={a.jobs} warmup={a.warmup} every={a.every} "
        f"rss_after_warmup_mib={max(base.values()) / 1024:.1f} "
        f"rss_end_mib={max(samples[-1][1].values()) / 1024:.1f} "
        f"growth_pct_max={worst:.2f} per_process=" + ",".join(f"{g:.2f}" for g in growth.values()),
        flush=True,
    )
    print(
        f"GOAL worker RSS growth after warm-up: {worst:.2f} % (goal < 5 %) "
        + ("met" if worst < 5 else "NOT MET")
    )


if __name__ == "__main__":
    main()
