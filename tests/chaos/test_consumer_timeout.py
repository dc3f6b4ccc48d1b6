"""Catalogue row T15: long jobs and delays longer than RabbitMQ's consumer_timeout.

Runs on the run's private RabbitMQ node (tests/support/private_services.py), whose
consumer_timeout it lowers to 15 s for the scenario and restores. About 2 min: not in CI's
``chaos_ci`` subset (the broker checks the timeout once a minute, so the control's close alone
takes up to 75 s).
"""

from __future__ import annotations

from devtools.chaos import consumer_timeout
from tests.chaos.conftest import ORDERS


def test_t15_long_jobs_and_delays_past_the_consumer_timeout_run_once_and_close_no_channel(
    harness, capsys
):
    # Given a broker whose consumer_timeout is 15 s and a worker group told so (time limits
    # 10 s, delays over 5 s wait in PostgreSQL), a group whose actors keep their own limits
    # having refused to start
    # When orders flow beside 60 jobs delayed 16-60 s, a job ending near its 10 s limit and one
    # that would hang for 90 s, while a raw consumer holds one delivery unacked
    outcome = consumer_timeout.long_jobs_and_delays(harness, ORDERS)
    ev = outcome.evidence
    with capsys.disabled():
        print(f"\nT15 evidence: {ev}\nT15 drain {outcome.drain_s}")

    # Then the time-limit check bit: told 15 s, the shop's own limits refuse to start, named
    assert ev["refused_start"]["exit_code"] == 2, ev["refused_start"]
    refusal = ev["refused_start"]["refusal"]
    assert "consumer_timeout of 15 s" in refusal and "(1500 s)" in refusal, refusal
    assert ev["limits_checked"]

    # And the timeout was in force: the control's channel was closed with 406
    assert ev["control"]["closed_with"] == 406, ev["control"]

    # And no channel of the workers was: not in the node's log, no consumer restarted
    assert ev["worker_channels_closed_406"] == [] and ev["consumer_restarts"] == 0, ev

    # And every delayed job waited in PostgreSQL and ran exactly once, within 5 s of its time
    assert ev["held_in_outbox"] >= 60 and ev["delayed_jobs"] == 60, ev
    assert ev["delayed_runs"] == 60 and ev["delayed_keys_once"], ev
    assert ev["delayed_attempts"] == [1] and ev["delayed_redeliveries"] == 0, ev
    assert ev["lateness_measured"] == 60, ev
    assert -5 <= ev["lateness_s"]["min"] and ev["lateness_s"]["max"] <= 5, ev["lateness_s"]

    # And the long jobs ran once each, never two at once: one ended near its limit, the
    # other was cut by it, long before the broker's timeout
    assert ev["near_limit"]["state"] == "succeeded" and ev["near_limit"]["runs"] == 1, ev
    assert ev["hang"]["state"] == "failed" and ev["hang"]["runs"] == 1, ev
    assert ev["near_limit"]["overlapping"] == 0 and ev["hang"]["overlapping"] == 0, ev

    # And the audit finds nothing lost, stranded or doubled
    assert outcome.problems() == []
