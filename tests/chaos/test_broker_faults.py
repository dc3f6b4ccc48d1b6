"""Catalogue rows about RabbitMQ: T3 (restarts), T24 (pipeline handoff), T5 (partition),
T21 (resource alarm), T22 (queue deleted, its orders re-driven). The restarts and the alarm act
on the run's private RabbitMQ node (tests/support/private_services.py) and restore it."""

from __future__ import annotations

import pytest

from devtools.chaos import network, scenarios
from devtools.chaos.harness import Outcome
from tests.chaos.conftest import ORDERS
from tests.support.chaos import assert_metrics_within, problems_but_metrics


@pytest.fixture(scope="module")
def outage_run() -> dict[str, Outcome]:
    return {}


def _outages(harness, cache: dict[str, Outcome]) -> Outcome:
    # one run feeds T3 and T24 (the suite's time budget): orders flowing and arriving while
    # RabbitMQ is stopped twice for 5 s, then every connection of the vhost closed
    if "run" not in cache:
        cache["run"] = scenarios.broker_outages(harness, ORDERS, outages=2, outage_s=5)
    return cache["run"]


@pytest.mark.chaos_ci
def test_t3_broker_restarts_and_closed_connections_lose_nothing_and_consumers_resume(
    harness, outage_run
):
    outcome = _outages(harness, outage_run)

    # the fault happened: the broker was away and the shop kept taking orders into the outbox
    assert outcome.evidence["outbox_rows_during_outage"] > 0
    assert all(r is not None and r <= 10 for r in outcome.evidence["consumers_resumed_in_s"]), (
        outcome.evidence
    )
    assert outcome.lost == 0 and outcome.audit.duplicate_effects == 0
    assert problems_but_metrics(outcome) == []
    # a job running when its connection closed loses its ack and runs again (deduped): each
    # outage and the closing may cut the runs in flight
    assert_metrics_within(
        outcome, (outcome.evidence["outages"] + 1) * harness.processes * harness.threads
    )


@pytest.mark.chaos_ci
def test_t24_a_pipeline_step_that_commits_while_the_broker_is_down_strands_no_order(
    harness, outage_run
):
    outcome = _outages(harness, outage_run)

    assert outcome.evidence["outages"] == 2
    assert outcome.stranded == 0, outcome.audit.stranded


def test_t5_a_partition_from_rabbitmq_is_found_by_heartbeats_and_loses_nothing(harness):
    # Given workers behind the fault proxy with a 5 s heartbeat
    # When the proxy blackholes RabbitMQ for 15 s under load
    outcome = network.broker_partition(harness, ORDERS, blackhole_s=15, heartbeat_s=5)

    # Then the workers found the dead connection within 3 heartbeats, no job hung past 35 s,
    # and the audit finds nothing lost or doubled
    found = outcome.evidence["dead_connection_found_s"]
    assert found is not None and found <= 3 * 5, outcome.evidence
    assert outcome.evidence["longest_job_s"] <= 35
    assert outcome.problems() == []


def test_t21_a_broker_alarm_does_not_hold_up_the_shop_and_loses_nothing(harness):
    # Given the shop selling as its service processes do: each commit hands its sends to the
    # process's relay (a sale that published on its own thread would block under the alarm:
    # pika blocks the publishing connection for blocked_connection_timeout, 60 s, and
    # Dramatiq's enqueue tries 6 times)
    # When RabbitMQ's disk alarm blocks every publisher for 6 s while 10 orders are taken
    outcome = scenarios.broker_alarm(harness, ORDERS // 2, alarm_s=6)

    # Then the fault bit: sold orders waited in the outbox while the alarm held publishing
    assert outcome.evidence["outbox_rows_during_alarm"] > 0, outcome.evidence
    # and the sales were not held up, and the audit finds nothing lost once it lifted
    assert not outcome.evidence["sales_blocked_by_alarm"], outcome.evidence
    assert outcome.problems() == []


def test_t22_a_work_queue_deleted_under_load_loses_nothing_silently(harness):
    # Given orders flowing with a backlog in the orders queue
    # When the queue is deleted, and the scheduled re-drive runs (every 2 s here, threshold 3 s)
    # while the shop keeps selling
    outcome = scenarios.queue_deleted(harness, ORDERS // 2)

    # Then the fault bit: RabbitMQ dropped messages the queue held
    deleted = outcome.evidence["messages_deleted"]
    assert deleted, outcome.evidence
    # and the re-drive accounted for them while orders kept coming and the queue was busy (a
    # check waiting for the queue to empty, ready and held, would have found none of them)
    assert outcome.evidence["accounted_under_load"], outcome.evidence
    assert outcome.evidence["orders_sold_while_redriving"] > 0, outcome.evidence
    assert min(outcome.evidence["orders_queue_messages_at_redrives"]) > 0, outcome.evidence
    # and each dropped job was found lost and its order re-driven, once: at least the ready
    # messages rabbitmqctl counted (deliveries a consumer had not taken yet go with the queue)
    assert outcome.evidence["lost_jobs_redriven"] >= deleted, outcome.evidence
    assert outcome.evidence["orders_redriven"] == outcome.evidence["lost_jobs_redriven"]
    # and the audit finds every order terminal, nothing lost or doubled
    assert outcome.lost == 0 and outcome.stranded == 0, outcome.audit.stranded
    assert outcome.problems() == []
