"""Faults of a scale-out set-up: a 3-node cluster with quorum queues and workers on two hosts."""

from __future__ import annotations

import pytest

from devtools.chaos import cluster as cluster_faults
from tests.cluster.conftest import ORDERS
from tests.support.chaos import assert_metrics_within, problems_but_metrics

POISON_ORDERS = 200  # the chaos suite's size: the poison, not the load, is the point


@pytest.mark.timeout(1800)
def test_a_stopped_node_then_a_host_cut_off_under_load_lose_and_duplicate_nothing(harness, cluster):
    nodes, vhost = cluster
    # Given two worker hosts on the cluster's quorum queues, one behind a veth link, and orders
    # arriving; the cut host's jobs come back as suspects of a crash, each run alone, and the
    # machine is shared: a long drain allowance (the drain time is reported, not asserted)
    harness.drain_timeout_s = 600
    # When the node holding the queues' leaders is stopped for 10 s and restarted, and once it
    # has rejoined, the second host is cut off the network for 30 s and comes back
    outcome = cluster_faults.node_lost_and_host_cut(
        harness, nodes, vhost, ORDERS, down_s=10, cut_s=30
    )
    evidence = outcome.evidence
    print(f"\n{outcome.scenario}: {evidence}, drained {outcome.drain_s}s")

    # Then the node stop bit: the stopped node held the orders queue's leader, a new one was
    # elected elsewhere, the consumers restarted on a live node (a probe sent on an idle queue
    # during the outage ran before the node was started again; how long after the stop is
    # reported, not asserted), the node came back into the cluster
    assert evidence["orders_leader_before"] == evidence["node_stopped"]
    assert evidence["orders_leader_during"] not in ("", None, evidence["node_stopped"])
    assert evidence["consumer_restarts"] >= 1
    assert evidence["rejoined_nodes"] == 3
    # and the cut bit: the cut host's consumers had to reconnect once its link was back, and
    # messages went back to the queues (redelivered) while nothing on the other host crashed
    assert evidence["cut_host_consumer_restarts"] >= 1, evidence
    # (each host is a host of its own: its supervisor and every worker process ran in a network
    # namespace of the test's, one per host, none the test's own, so all traffic crossed links)
    assert evidence["hosts_apart"], evidence
    assert all(len(ns) == 1 for ns in evidence["hosts_namespaces"].values()), evidence
    assert all(n >= 3 for n in evidence["processes_per_host"].values()), evidence
    assert evidence["redeliveries_since_cut"] >= 1, evidence
    assert evidence["steady_host_deaths"] == 0
    # and the invariant audit: every order terminal, one charge each, every job the run sent
    # finished (no ledger row left open), the outbox empty
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
