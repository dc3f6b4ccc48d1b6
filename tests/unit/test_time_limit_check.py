"""A worker whose actors may run past RabbitMQ's consumer_timeout refuses to start, and the
settings refuse a delay threshold a worker would hold unacked past it."""

from __future__ import annotations

import logging

import dramatiq
import pytest
from dramatiq import Worker
from dramatiq.brokers.stub import StubBroker
from dramatiq.cli import RET_IMPORT
from dramatiq.middleware import TimeLimit

import actors  # noqa: F401  (declares every actor of the shop)
import broker as shop_broker
from jobcore.time_limits import check
from middleware.time_limit_check import TimeLimitCheck
from shop.settings import Settings, SettingsError


def _broker(consumer_timeout_s: int, default_ms: int = 10_000) -> StubBroker:
    return StubBroker(
        middleware=[TimeLimit(time_limit=default_ms), TimeLimitCheck(consumer_timeout_s)]
    )


def _declare(broker: StubBroker, name: str, queue: str, **options: int) -> None:
    @dramatiq.actor(broker=broker, actor_name=name, queue_name=queue, **options)
    def job() -> None: ...


def _boot(broker: StubBroker, queues: set[str] | None = None) -> Worker:
    worker = Worker(broker, queues=queues, worker_timeout=50, worker_threads=1)
    worker.start()
    return worker


def test_an_actor_whose_limit_is_not_5s_below_the_consumer_timeout_stops_the_worker_named(
    caplog,
):
    # Given a 15 s consumer_timeout, one actor limited to 10 s and one to 10.5 s
    broker = _broker(15)
    _declare(broker, "reports.fits", "reports", time_limit=10_000)
    _declare(broker, "reports.too_long", "reports", time_limit=10_500)

    # When a worker boots, Then it exits with Dramatiq's start-failure code, naming the actor,
    # its limit and the timeout
    with caplog.at_level(logging.CRITICAL), pytest.raises(SystemExit) as stopped:
        _boot(broker)
    assert stopped.value.code == RET_IMPORT
    (refusal,) = [r.getMessage() for r in caplog.records if r.levelno == logging.CRITICAL]
    assert "reports.too_long (10.5 s)" in refusal and "reports.fits" not in refusal
    assert "consumer_timeout of 15 s" in refusal and "SHOPJOBS_CONSUMER_TIMEOUT_S" in refusal


def test_an_actor_without_its_own_limit_is_held_to_time_limits_default():
    # Given TimeLimit's default of 20 s and an actor that sets none
    broker = _broker(15, default_ms=20_000)
    _declare(broker, "orders.plain", "orders")

    with pytest.raises(SystemExit):
        _boot(broker)


def test_limits_that_end_5s_before_the_timeout_start_and_log_the_longest(caplog):
    broker = _broker(15)
    _declare(broker, "orders.plain", "orders")  # the default, 10 s
    _declare(broker, "orders.short", "orders", time_limit=2_000)

    with caplog.at_level(logging.INFO):
        worker = _boot(broker)
    worker.stop()
    assert any(
        "consumer_timeout 15 s" in r.getMessage() and "orders.plain's, 10 s" in r.getMessage()
        for r in caplog.records
    )


def test_a_worker_is_checked_only_for_the_queues_it_consumes():
    # Given a long actor on "reports" only
    broker = _broker(15)
    _declare(broker, "orders.short", "orders", time_limit=2_000)
    _declare(broker, "reports.long", "reports", time_limit=60_000)

    # Then a worker of "orders" starts, and a worker of every queue does not
    _boot(broker, queues={"orders"}).stop()
    with pytest.raises(SystemExit):
        _boot(broker)


def test_a_stack_without_time_limit_refuses_every_actor():
    broker = StubBroker(middleware=[TimeLimitCheck(15)])
    _declare(broker, "orders.unbounded", "orders")

    with pytest.raises(SystemExit):
        _boot(broker)


def test_the_shops_actors_fit_rabbitmqs_default_consumer_timeout():
    assert Settings.from_env({}).consumer_timeout_s == 1800
    longest = check(shop_broker.broker, 1800)
    assert longest.limit_ms is not None and longest.limit_ms <= 1795 * 1000


@pytest.mark.parametrize(("delay_s", "timeout_s"), [("30", "30"), ("26", "30"), ("30", "15")])
def test_a_delay_threshold_not_5s_below_the_consumer_timeout_is_refused_naming_both(
    delay_s, timeout_s
):
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(
            {"SHOPJOBS_DELAY_IN_DB_AFTER_S": delay_s, "SHOPJOBS_CONSUMER_TIMEOUT_S": timeout_s}
        )
    assert f"SHOPJOBS_DELAY_IN_DB_AFTER_S={delay_s}" in str(refused.value)
    assert f"SHOPJOBS_CONSUMER_TIMEOUT_S={timeout_s}" in str(refused.value)


def test_a_delay_threshold_5s_below_the_consumer_timeout_is_accepted():
    settings = Settings.from_env(
        {"SHOPJOBS_DELAY_IN_DB_AFTER_S": "10", "SHOPJOBS_CONSUMER_TIMEOUT_S": "15"}
    )
    assert (settings.delay_in_db_after_s, settings.consumer_timeout_s) == (10, 15)


def _prefetch_warnings(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.INFO and "prefetched delivery" in r.getMessage()
    ]


@pytest.mark.parametrize(("limit_ms", "warned"), [(5_000, False), (6_000, True)])
def test_a_prefetched_delivery_that_may_outwait_the_timeout_is_said_at_boot(
    caplog, limit_ms, warned
):
    # Given a 15 s timeout (10 s usable) and one thread with Dramatiq's prefetch of 2: the
    # second delivery may wait for the first job's limit, then run its own
    broker = _broker(15)
    _declare(broker, "reports.export", "reports", time_limit=limit_ms)

    with caplog.at_level(logging.INFO):
        worker = _boot(broker)
    worker.stop()

    # Then 2 x 5 s fits and starts quietly; 2 x 6 s does not and says so, with the way out
    found = _prefetch_warnings(caplog)
    assert bool(found) is warned, found
    if warned:
        assert "up to 12 s" in found[0] and "reports.export" in found[0]
        assert "dramatiq_queue_prefetch" in found[0]


def test_the_unacked_bound_counts_rounds_of_jobs_on_the_threads():
    from jobcore.time_limits import unacked_bound_s

    assert unacked_bound_s(10_000, prefetched=8, threads=8) == 10
    assert unacked_bound_s(10_000, prefetched=9, threads=8) == 20
    assert unacked_bound_s(10_000, prefetched=32, threads=8) == 40
    assert unacked_bound_s(10_000, prefetched=0, threads=8) == 10


def test_a_time_limit_sent_with_one_message_is_capped_below_the_timeout(caplog):
    # Given a 15 s timeout and a sender asking one message for 60 s
    broker = _broker(15)
    seen: list[int] = []

    @dramatiq.actor(broker=broker, actor_name="reports.fits", queue_name="reports")
    def job() -> None:
        seen.append(1)

    message = job.send_with_options(time_limit=60_000)
    small = job.send_with_options(time_limit=2_000)

    # When a worker runs them
    with caplog.at_level(logging.WARNING):
        worker = _boot(broker)
        broker.join("reports")
        worker.join()
    worker.stop()

    # Then the 60 s one ran under a 10 s limit (said in a warning), the 2 s one untouched
    assert len(seen) == 2
    capped = [r.getMessage() for r in caplog.records if "capped at 10 s" in r.getMessage()]
    assert len(capped) == 1 and message.message_id in capped[0]
    assert small.message_id not in " ".join(capped)
