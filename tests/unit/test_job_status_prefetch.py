"""Which prefetch a worker uses: JobStatus widens Dramatiq's default, and only that."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker

from jobcore.ledger.writer import LedgerWriter
from middleware.job_status import JobStatus

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture()
def stub_broker() -> Iterator[StubBroker]:
    broker = StubBroker(
        middleware=[
            JobStatus(LedgerWriter(lambda: None), acks_deferred=True, prefetch_per_thread=16)
        ]
    )

    @dramatiq.actor(broker=broker, actor_name="unit.prefetch", queue_name="unit")
    def prefetch() -> None:
        pass

    yield broker
    broker.close()


def _boot(broker: StubBroker, *, threads: int, prefetch: int | None = None) -> int:
    """Start a worker (its prefetch optionally set in code first); the unit queue's prefetch."""
    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=50)
    if prefetch is not None:
        worker.queue_prefetch = prefetch
    worker.start()
    try:
        return worker.consumers["unit"].prefetch
    finally:
        worker.stop()


def test_dramatiqs_default_is_widened_for_deferred_acks_and_the_reason_logged(stub_broker, caplog):
    # Given a worker whose prefetch nobody chose (Dramatiq's default: 2 per thread = 8)
    caplog.set_level(logging.INFO, logger="shopjobs.ledger")

    # When it boots under JobStatus with deferred acks
    prefetch = _boot(stub_broker, threads=4)

    # Then each consumer may hold 16 per thread, and the boot log says so once, with why
    assert prefetch == 64
    lines = [r.getMessage() for r in caplog.records if "queue prefetch" in r.getMessage()]
    assert lines == [
        "queue prefetch 64 per queue for 4 threads: Dramatiq's default 8 widened to 16 per thread, "
        + "because acks wait for the ledger commit"
    ]


def test_a_prefetch_set_in_code_is_kept(stub_broker, caplog):
    caplog.set_level(logging.INFO, logger="shopjobs.ledger")

    prefetch = _boot(stub_broker, threads=4, prefetch=1)

    assert prefetch == 1
    assert "queue prefetch 1 per queue for 4 threads: set in code" in caplog.text


def test_without_deferred_acks_dramatiqs_default_stays(caplog):
    broker = StubBroker(middleware=[JobStatus(LedgerWriter(lambda: None), acks_deferred=False)])
    dramatiq.actor(broker=broker, actor_name="unit.plain", queue_name="unit")(lambda: None)
    caplog.set_level(logging.INFO, logger="shopjobs.ledger")

    assert _boot(broker, threads=3) == 6
    assert "acks are not deferred" in caplog.text
    broker.close()


def test_a_prefetch_from_dramatiqs_environment_variable_is_kept():
    # Dramatiq reads dramatiq_queue_prefetch when it is imported: a fresh process sees it
    script = textwrap.dedent("""
        import logging, dramatiq
        from dramatiq.brokers.stub import StubBroker
        from jobcore.ledger.writer import LedgerWriter
        from middleware.job_status import JobStatus
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        broker = StubBroker(middleware=[JobStatus(LedgerWriter(lambda: None), acks_deferred=True)])
        dramatiq.actor(broker=broker, actor_name="unit.env", queue_name="unit")(lambda: None)
        worker = dramatiq.Worker(broker, worker_threads=4, worker_timeout=50)
        worker.start()
        print("prefetch", worker.consumers["unit"].prefetch)
        worker.stop()
    """)
    env = {**os.environ, "dramatiq_queue_prefetch": "3", "PYTHONPATH": ROOT}
    out = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )

    assert out.returncode == 0, out.stderr
    assert "prefetch 3" in out.stdout
    assert "queue prefetch 3 per queue for 4 threads: set by dramatiq_queue_prefetch" in out.stderr
