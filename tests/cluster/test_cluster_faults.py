"""Faults of a scale-out set-up: a 3-node cluster with quorum queues and workers on two hosts."""

from __future__ import annotations

import pytest

from devtools.chaos import cluster as cluster_faults
from tests.cluster.conftest import ORDERS

POISON_ORDERS = 200  # the chaos suite's size: the poison, not the load, is the point
from tests.support.chaos import assert_metrics_within, problems_but_metrics


@pytest.mark.timeout(1200)
def test_a_stopped_node_holding_the_leaders_loses_no_order_and_consumers_resume(harness, cluster):
    nodes, vhost = cluster
    outcome = cluster_faults.node_lost(harness, nodes, vhost, ORDERS, down_s=10)
    evidence = outcome.evidence
    print(f"\n{outcome.scenario}: {evidence}, drained {outcome.drain_s}s")

    # the fault bit: the stopped node held the orders queue's leader, a new one was elected
    # elsewhere, the consumers restarted on a live node, and the node came back into the cluster
    assert evidence["orders_leader_before"] == evidence["node_stopped"]
    assert evidence["orders_leader_during"] not in ("", None, evidence["node_stopped"])
    assert evidence["consumer_restarts"] >= 1
    assert evidence["rejoined_nodes"] == 3
    # a probe sent on an idle queue during the outage started within 10 s of the stop
    assert evidence["consumers_resumed_in_s"] <= 10, evidence
    # and the invariant audit: every order terminal, one charge each, 0 lost, 0 stranded
    assert outcome.orders == ORDERS
    assert outcome.lost == 0 and outcome.stranded == 0
    assert outcome.audit.duplicate_effects == 0
    assert problems_but_metrics(outcome) == []
    # a job running when its node went away loses its ack and runs again (deduped): metrics
    # count that run twice, the ledger once; at most the runs in flight (2 processes x 4 threads)
    assert_metrics_within(outcome, harness.processes * harness.threads)


@pytest.mark.timeout(1200)
def test_a_worker_host_cut_off_under_load_loses_and_duplicates_nothing(harness, cluster):
    nodes, vhost = cluster
    # the cut host's jobs come back as suspects of a crash, each run alone: a longer drain
    harness.drain_timeout_s = 300
    outcome = cluster_faults.host_cut_off(harness, nodes, vhost, ORDERS, cut_s=30)
    evidence = outcome.evidence
    print(f"\n{outcome.scenario}: {evidence}, drained {outcome.drain_s}s")

    # the fault bit: the cut host's messages went back to the queues (redelivered to the other
    # host) and its consumers had to reconnect once the link was back
    assert evidence["redeliveries"] >= 1, evidence
    assert evidence["cut_host_consumer_restarts"] >= 1, evidence
    assert evidence["steady_host_deaths"] == 0
    # and the invariant audit: every order terminal, one charge each, every job the run sent
    # finished (none left 'retrying' with its retry skipped, as one was before the claim
    # compared attempt numbers), the outbox empty
    assert outcome.orders == ORDERS
    assert outcome.lost == 0 and outcome.stranded == 0
    assert evidence["open_ledger_rows"] == [], evidence
    assert outcome.audit.duplicate_effects == 0
    assert outcome.problems() == []


@pytest.mark.timeout(900)
def test_a_crash_poison_on_a_quorum_queue_is_parked_and_nothing_beside_it(harness, cluster):
    nodes, vhost = cluster
    # Given a message that kills its worker process each time it runs, among 200 orders, on the
    # cluster's quorum queues
    outcome = cluster_faults.crash_poison(harness, nodes, vhost, POISON_ORDERS)
    evidence = outcome.evidence
    print(f"\n{outcome.scenario}: {evidence}, drained {outcome.drain_s}s")

    # Then the fault bit: its queue is a quorum queue (its leader on a node of the cluster), it
    # ran three times (among others, then alone twice) and killed its process each time, and
    # the crash guard parked it below RabbitMQ's delivery limit (4 deliveries of 5), as a
    # crashed worker; nothing beside it was parked
    assert evidence["chaos_queue_leader"] in {node.node for node in nodes.nodes}, evidence
    assert evidence["runs_per_poison"] == [3] and evidence["worker_deaths"] == 3, evidence
    assert evidence["runs_per_poison"][0] + 1 <= evidence["delivery_limit"]
    assert evidence["parked_culprits"] == 1 and evidence["bystanders_parked"] == 0, evidence
    # and the invariant audit
    assert outcome.lost == 0 and outcome.stranded == 0
    assert outcome.audit.duplicate_effects == 0
    assert problems_but_metrics(outcome) == []
    assert_metrics_within(outcome, evidence["worker_deaths"] * harness.threads)
