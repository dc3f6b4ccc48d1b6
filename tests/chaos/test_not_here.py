"""Catalogue rows this suite does not run, each with the reason (no silent gaps)."""

from __future__ import annotations

import pytest

ELSEWHERE = "runs in this same CI run as {where}; not repeated here for the time budget"


@pytest.mark.skip(reason=ELSEWHERE.format(
    where="tests/integration/test_scheduler.py::test_two_schedulers_send_one_message_per_fire_"
          "when_the_leader_is_killed (two real schedulers, leader SIGKILLed, one message per fire, "
          "takeover within two ticks)"))
def test_t13_two_schedulers_leader_killed():
    """T13."""


@pytest.mark.skip(reason="needs the scheduler process's clock moved: faketime is not installed here and "
                         "time-machine moves only the test process's clock; the fire-time rules (DST, "
                         "coalescing) are covered in-process by tests/unit/test_schedule.py")
def test_t14_clock_jumps_on_the_scheduler():
    """T14."""


@pytest.mark.skip(reason="RabbitMQ 3.10 on this machine sets consumer_timeout only node-wide in "
                         "rabbitmq.conf (a restart of the shared node with a changed file); the "
                         "per-queue x-consumer-timeout arrives with 3.12")
def test_t15_long_job_against_consumer_timeout():
    """T15."""


@pytest.mark.skip(reason=ELSEWHERE.format(
    where="tests/integration/notifications/test_delivery_faults.py (550, 421/451, hang, drop after "
          "DATA) and test_campaign_and_outage.py::test_an_smtp_outage_during_150_orders_loses_no_"
          "mail_and_doubles_none"))
def test_t16_smtp_faults():
    """T16."""


@pytest.mark.skip(reason=ELSEWHERE.format(
    where="tests/unit/test_webhook_signing.py (wrong secret, changed byte, stale, future, missing "
          "header, two secrets) and tests/integration/test_order_jobs.py (forged, tampered, stale and "
          "replayed webhooks against the real endpoint: no writes, one effect for ten replays)"))
def test_t18_webhook_replay_and_forgery():
    """T18."""
