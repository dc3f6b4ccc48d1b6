"""Metric values batched in memory reach prometheus-client's multiprocess files whole."""

from __future__ import annotations

import multiprocessing
import threading

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess, values

from jobcore.metrics import batched


@pytest.fixture()
def multiproc_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setattr(values, "ValueClass", batched.BatchedValue(interval=3600))
    return str(tmp_path)


def _scraped(path: str) -> dict[str, float]:
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=path)
    return {
        f"{s.name}{sorted(s.labels.items())}": s.value
        for family in registry.collect()
        for s in family.samples
    }


def _count_jobs(n_threads: int, per_thread: int) -> tuple[Counter, Histogram]:
    jobs = Counter("unit_batched_jobs", "jobs", ["outcome"], registry=None)
    duration = Histogram("unit_batched_seconds", "time", registry=None, buckets=(0.1, 1))

    def work() -> None:
        for _ in range(per_thread):
            jobs.labels("succeeded").inc()
            duration.observe(0.05)

    threads = [threading.Thread(target=work) for _ in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return jobs, duration


def test_increments_from_many_threads_reach_the_files_at_the_flush_not_before(multiproc_dir):
    # Given 8 threads counting 500 jobs each, with no flush yet
    _count_jobs(8, 500)
    before = _scraped(multiproc_dir)
    assert before.get("unit_batched_jobs_total[('outcome', 'succeeded')]", 0) == 0

    # When the process flushes
    assert batched.flush() >= 3

    # Then a scrape of the files counts every job, in the counter and in the histogram
    after = _scraped(multiproc_dir)
    assert after["unit_batched_jobs_total[('outcome', 'succeeded')]"] == 4000
    assert after["unit_batched_seconds_count[]"] == 4000
    assert after["unit_batched_seconds_bucket[('le', '0.1')]"] == 4000
    assert after["unit_batched_seconds_sum[]"] == pytest.approx(200.0)
    # and a flush with nothing new writes nothing
    assert batched.flush() == 0


def _child(path: str) -> None:
    values.ValueClass = batched.BatchedValue(interval=3600)
    _count_jobs(4, 250)
    # returning ends the process through os._exit, as a Dramatiq worker process ends


def test_a_worker_process_that_exits_writes_its_last_counts(multiproc_dir):
    # Given a child process that counts 1000 jobs and exits without flushing itself
    child = multiprocessing.get_context("fork").Process(target=_child, args=(multiproc_dir,))
    child.start()
    child.join(30)
    assert child.exitcode == 0

    # Then its file holds all of them
    assert _scraped(multiproc_dir)["unit_batched_jobs_total[('outcome', 'succeeded')]"] == 1000
