"""The supervisor (``shopjobs worker``): a dead process is replaced alone, the group stops and
reloads gracefully, and a crash loop ends it with exit code 5 instead of spinning."""

from __future__ import annotations

import os
import subprocess

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import func, select

import broker
from devtools.processes import SHOPJOBS, Worker
from jobcore.db import session_scope
from jobcore.models import LedgerEntry
from jobcore.supervisor import RET_CRASH_LOOP
from tests.support.faulty_actors import noop
from tests.support.ledger import entry
from tests.support.metrics import instance_dir, total
from tests.support.supervised_actors import DIE_AFTER_ENV, hold
from tests.support.waiting import wait_until

TEST_ACTORS = ("actors", "tests.support.faulty_actors", "tests.support.supervised_actors")


def _started_in(marker_dir, name: str) -> int | None:
    path = marker_dir / f"{name}.started"
    return int(path.read_text().split()[0]) if path.exists() else None


def _done_by(marker_dir, name: str) -> list[int]:
    path = marker_dir / f"{name}.done"
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _succeeded(actor: str) -> int:
    with session_scope() as s:
        return s.scalar(
            select(func.count())
            .select_from(LedgerEntry)
            .where(LedgerEntry.actor == actor, LedgerEntry.state == "succeeded")
        )


def _group_metrics(path: str) -> str:
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=path)
    return generate_latest(registry).decode()


def test_a_killed_worker_process_is_replaced_alone_while_the_other_finishes_its_job(
    start_worker, tmp_path
):
    # Given a group of two processes, one of them running a job the test holds
    worker = start_worker(*TEST_ACTORS, processes=2, threads=2)
    held = hold.send(str(tmp_path), "held").message_id
    runner = wait_until(lambda: _started_in(tmp_path, "held"), what="the held job to start")
    slots = worker.worker_pids()
    victim = next(pid for pid in slots.values() if pid != runner)

    # When the other process is killed with SIGKILL, and 200 jobs are sent meanwhile
    os.kill(victim, 9)
    for i in range(200):
        noop.send(i)
    broker.flush_ledger()
    replacement = worker.wait_replaced(victim)

    # Then that process alone was replaced: the runner kept its job and finished it, once
    assert replacement not in slots.values() and runner in worker.worker_pids().values()
    (tmp_path / "held.release").touch()
    wait_until(lambda: entry(held) and entry(held).state == "succeeded", what="the held job done")
    assert _done_by(tmp_path, "held") == [runner] and entry(held).redeliveries == 0
    wait_until(lambda: _succeeded("tests.noop") == 200, timeout=60, what="200 jobs done")
    assert worker.deaths() == 1 and worker.alive()
    assert "Worker has been shut down" not in worker.log()  # nothing else was stopped


def test_sigterm_lets_the_running_job_finish_and_exits_0(start_worker, tmp_path):
    # Given a group running a job
    worker = start_worker(*TEST_ACTORS, processes=2, threads=2)
    held = hold.send(str(tmp_path), "held").message_id
    runner = wait_until(lambda: _started_in(tmp_path, "held"), what="the held job to start")

    # When the supervisor gets SIGTERM while the job runs, and the job is then let go
    worker.proc.terminate()
    wait_until(lambda: "stopping the worker group" in worker.log(), what="the stop to begin")
    (tmp_path / "held.release").touch()

    # Then the job finished in its process and the supervisor exited 0
    assert worker.proc.wait(30) == 0
    assert _done_by(tmp_path, "held") == [runner]
    assert entry(held).state == "succeeded"


def test_sighup_replaces_every_process_one_at_a_time_and_loses_nothing(start_worker, tmp_path):
    # Given a group of two processes, one running a held job, and 300 queued jobs
    worker = start_worker(*TEST_ACTORS, processes=2, threads=2)
    before = worker.worker_pids()
    held = hold.send(str(tmp_path), "held").message_id
    runner = wait_until(lambda: _started_in(tmp_path, "held"), what="the held job to start")
    for i in range(300):
        noop.send(i)
    broker.flush_ledger()

    # When it is told to reload, and the held job is let go once the reload began
    worker.reload()
    wait_until(
        lambda: "started successor worker process" in worker.log(), what="the reload to begin"
    )
    (tmp_path / "held.release").touch()
    wait_until(lambda: "reload done" in worker.log(), timeout=90, what="the reload to finish")

    # Then both processes are new, the old runner finished its job, and every job ran once
    after = worker.worker_pids()
    assert set(after) == {0, 1} and not set(after.values()) & set(before.values())
    assert _done_by(tmp_path, "held") == [runner] and entry(held).state == "succeeded"
    wait_until(lambda: _succeeded("tests.noop") == 300, timeout=60, what="300 jobs done")
    assert worker.deaths() == 0 and worker.alive()


def test_a_group_whose_processes_keep_dying_backs_off_and_ends_with_exit_code_5(clean, tmp_path):
    # Given worker processes that die 0.3 s after they boot, every time
    worker = Worker(
        TEST_ACTORS,
        processes=2,
        threads=1,
        env={DIE_AFTER_ENV: "0.3"},
        supervisor_args=(
            "--restart-backoff-s",
            "0.2",
            "--restart-backoff-max-s",
            "0.4",
            "--crash-loop-restarts",
            "3",
        ),
        log_path=str(tmp_path / "worker.log"),
    )
    metrics_dir = instance_dir(worker.pid)  # named after the supervisor while it lives
    try:
        # When the supervisor runs them
        code = worker.proc.wait(120)
    finally:
        worker.stop()

    # Then it restarted each with growing waits, then reported the crash loop and exited 5
    log = worker.log()
    assert code == RET_CRASH_LOOP, log[-3000:]
    assert "restarting it in 0.0s" in log and "restarting it in 0.2s" in log
    assert "worker group is crash-looping" in log
    assert worker.deaths() >= 6
    # and its metrics (what the group's endpoint serves) show the restarts and the crash loop
    text = _group_metrics(metrics_dir)
    assert total(text, "shopjobs_worker_restarts_total", kind="worker") == worker.deaths()
    assert total(text, "shopjobs_worker_group_crash_looping") == 1


def test_an_application_that_cannot_be_imported_stops_the_group_at_once_with_exit_code_2(clean):
    # When the supervisor is given a module that does not exist
    done = subprocess.run(
        [SHOPJOBS, "worker", "actors", "tests.support.no_such_module", "-p", "2"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    # Then it stops with Dramatiq's import-error code, saying why, instead of restarting
    assert done.returncode == 2, done.stderr[-3000:]
    assert "could not start (an import error" in done.stderr
    assert "restarting it in" not in done.stderr


def test_a_killed_supervisor_takes_its_worker_processes_with_it(start_worker):
    # Given a running group
    worker = start_worker(*TEST_ACTORS, processes=2, threads=1)
    children = list(worker.worker_pids().values())

    # When the supervisor alone is killed outright
    os.kill(worker.pid, 9)
    worker.proc.wait(10)

    # Then its worker processes stop too (the kernel's parent-death signal), no orphan consumes
    def gone() -> bool:
        return all(not os.path.exists(f"/proc/{pid}") or _zombie(pid) for pid in children)

    wait_until(gone, timeout=30, what="the orphaned worker processes to stop")


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
