"""Scale-out faults on a private 3-node RabbitMQ cluster with quorum queues.

The worker group, the relays inside it and this process's after-commit publishes all reach the
cluster through one node list (``SHOPJOBS_AMQP_URL`` with ``;``); the queues are quorum queues,
declared by the workers through the first node, which so holds their leaders. Stopping that node
under load takes away, at once, the node every consumer is connected to and the leader of every
queue: consumers must fail over to a live node, a new leader must be elected, and nothing may
be lost, stranded or done twice. The node is then started again on its data and rejoins.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import dramatiq
from sqlalchemy import func, or_, select
from sqlalchemy.engine import make_url

from devtools.chaos import actors as chaos_actors
from devtools.chaos import load as shop_load
from devtools.chaos.audit import OPEN_LEDGER
from devtools.chaos.harness import Harness, Outcome, at_progress, ledger_count, when
from devtools.chaos.load import Load
from devtools.chaos.scenarios import BACKOFF
from devtools.private.cluster import RabbitCluster
from jobcore import outbox
from jobcore.db import session_scope
from jobcore.models import LedgerEntry


def cluster_env(cluster: RabbitCluster, vhost: str) -> dict[str, str]:
    """What a process of ours needs to run on the cluster's quorum queues."""
    return {
        "SHOPJOBS_AMQP_URL": cluster.url(vhost),
        "SHOPJOBS_QUEUE_TYPE": "quorum",
        "SHOPJOBS_AMQP_HEARTBEAT": "5",
    }


@contextlib.contextmanager
def publishing_to(cluster: RabbitCluster, vhost: str) -> Iterator[None]:
    """This process's after-commit publishes go to the cluster while the block runs."""
    import broker as app

    previous = dramatiq.get_broker()
    settings = dataclasses.replace(
        app.settings, amqp_url=cluster.url(vhost), queue_type="quorum", amqp_heartbeat=5
    )
    on_cluster = app.build_broker(settings)
    dramatiq.set_broker(on_cluster)
    try:
        yield
    finally:
        dramatiq.set_broker(previous)
        with contextlib.suppress(Exception):
            on_cluster.close()


def _open_rows() -> list[tuple[str, str, str, int, int, str]]:
    """What a run left unfinished and due (a job held for later is not): (message id, actor,
    state, attempts, redeliveries, worker)."""
    with session_scope() as s:
        rows = s.execute(
            select(
                LedgerEntry.message_id,
                LedgerEntry.actor,
                LedgerEntry.state,
                LedgerEntry.attempts,
                LedgerEntry.redeliveries,
                LedgerEntry.worker,
            ).where(
                LedgerEntry.state.in_(OPEN_LEDGER),
                or_(LedgerEntry.eta.is_(None), LedgerEntry.eta <= func.now()),
            )
        ).all()
    return [tuple(row) for row in rows]  # type: ignore[misc]


def _started_at(message_id: str) -> float | None:
    """When a job started, on this process's monotonic clock (read from the database's clock),
    or None while it has not (or the database cannot say: polled again)."""
    try:
        with session_scope() as s:
            row = s.execute(
                select(LedgerEntry.started_at, func.now().label("now")).where(
                    LedgerEntry.message_id == message_id
                )
            ).one_or_none()
    except Exception:  # noqa: BLE001  (polled again)
        return None
    if row is None or row.started_at is None:
        return None
    return time.monotonic() - (row.now - row.started_at).total_seconds()


def node_lost(
    h: Harness, cluster: RabbitCluster, vhost: str, orders: int, down_s: float = 10
) -> Outcome:
    """A node stopped under load (the one the consumers use and the queues' leaders live on),
    then started again; orders keep arriving meanwhile."""
    load = Load()
    products = shop_load.catalogue(load, h.rng)
    worker = h.workers("cluster", env={**BACKOFF, **cluster_env(cluster, vhost)})
    leaders_before = cluster.queue_leaders(vhost)
    victim = cluster.node(leaders_before.get("orders") or cluster.nodes[0].node)
    half = orders // 2
    with publishing_to(cluster, vhost):
        shop_load.orders(load, h.rng, half, products)
        at_progress(load, 0.3, timeout=300)
        stopped_at = time.monotonic()
        victim.stop()  # returns once the node's VM has exited (its pid file's process)
        down_at = time.monotonic()
        # a probe on the idle chaos queue shows the consumers and the publishers back on a live
        # node (jobs prefetched before the stop prove nothing, and an order's first step waits
        # behind the orders queue's backlog); the shop keeps selling meanwhile
        with session_scope() as s:
            probe = outbox.enqueue(s, chaos_actors.probe, 1)
        shop_load.orders(load, h.rng, orders - half, products)
        probe_started = when(
            lambda: _started_at(probe), 120, "a probe sent after the stop to start"
        )
        assert probe_started is not None  # when() returns a truthy value
        resumed_in = round(probe_started - stopped_at, 1)
        resumed_after_down = round(probe_started - down_at, 1)
        leaders_during = cluster.queue_leaders(vhost)
        threading.Event().wait(max(0.0, down_s - (time.monotonic() - stopped_at)))
        victim.start(keep_data=True)
        cluster.wait_running(len(cluster.nodes))
        back_at = time.monotonic()
        evidence: dict[str, Any] = {
            "node_stopped": victim.node,
            "orders_leader_before": leaders_before.get("orders"),
            "orders_leader_during": leaders_during.get("orders"),
            "stop_took_s": round(down_at - stopped_at, 1),
            "consumers_resumed_in_s": resumed_in,
            "resumed_after_node_down_s": resumed_after_down,
            "consumer_restarts": worker.log().count("Restarting consumer"),
            "rejoined_nodes": len(cluster.running_nodes()),
        }
        outcome = h.finish(
            "C1",
            f"cluster node holding the leaders stopped {down_s:.0f}s, then restarted",
            load,
            1,
            evidence,
            back_at,
            worker,
        )
    evidence["jobs"] = ledger_count()  # ledger rows: every message the run sent
    return outcome


class CutOffHost:
    """A worker "host" whose every connection to the cluster and to PostgreSQL crosses a veth
    link of a network namespace of the test's own (fault proxies listen on the namespace's end);
    ``cut()`` takes the link down, so the host vanishes from the network mid-conversation, as a
    machine does when its switch port dies. HTTP to the stand-ins stays on loopback.
    """

    def __init__(self, cluster: RabbitCluster, vhost: str) -> None:
        from devtools.chaos.netns import Partition
        from devtools.chaos.proxy import FaultProxy

        self.partition = Partition()
        self.proxies = []
        nodes = []
        try:
            for node in cluster.nodes:
                proxy = FaultProxy(("127.0.0.1", node.port), listen=self.partition.listen()).start()
                self.proxies.append(proxy)
                host, port = proxy.address
                nodes.append(f"amqp://guest:guest@{host}:{port}/{vhost}")
            database = make_url(os.environ["SHOPJOBS_DATABASE_URL"])
            proxy = FaultProxy(
                (database.host or "127.0.0.1", database.port or 5432),
                listen=self.partition.listen(),
            ).start()
            self.proxies.append(proxy)
            host, port = proxy.address
        except BaseException:
            self.close()
            raise
        self.env = {
            "SHOPJOBS_AMQP_URL": ";".join(nodes),
            "SHOPJOBS_DATABASE_URL": database.set(host=host, port=port).render_as_string(
                hide_password=False
            ),
        }

    def cut(self) -> None:
        self.partition.cut()

    def heal(self) -> None:
        self.partition.heal()

    def close(self) -> None:
        for proxy in self.proxies:
            with contextlib.suppress(Exception):
                proxy.stop()
        self.partition.close()


def host_cut_off(
    h: Harness, cluster: RabbitCluster, vhost: str, orders: int, cut_s: float = 30
) -> Outcome:
    """Two worker hosts on the cluster; one is cut off the network under load for ``cut_s``,
    then comes back. Its unacked messages go back to the queues when RabbitMQ finds its
    connections dead (heartbeats), the other host finishes them; its in-flight jobs cannot
    commit, so nothing it did counts twice."""
    load = Load()
    products = shop_load.catalogue(load, h.rng)
    common = {**BACKOFF, **cluster_env(cluster, vhost)}
    steady = h.workers("host-1", env=common)
    host = CutOffHost(cluster, vhost)
    try:
        remote = h.workers("host-2", env={**common, **host.env})
        with publishing_to(cluster, vhost):
            half = orders // 2
            shop_load.orders(load, h.rng, half, products)
            at_progress(load, 0.3, timeout=300)
            host.cut()
            cut_at = time.monotonic()
            shop_load.orders(load, h.rng, orders - half, products)  # the shop keeps selling
            threading.Event().wait(max(0.0, cut_s - (time.monotonic() - cut_at)))
            host.heal()
            healed_at = time.monotonic()
            evidence: dict[str, Any] = {"cut_s": cut_s}
            outcome = h.finish(
                "C2",
                f"a worker host cut off the network for {cut_s:.0f}s under load",
                load,
                host.partition.cuts,
                evidence,
                healed_at,
                None,
            )
        evidence["cut_host_consumer_restarts"] = remote.log().count("Restarting consumer")
        evidence["open_ledger_rows"] = _open_rows()
        evidence["jobs"] = ledger_count()
        evidence["steady_host_deaths"] = steady.deaths()
        evidence["redeliveries"] = outcome.evidence.get("redeliveries")
        return outcome
    finally:
        for group in (steady, locals().get("remote")):
            if group is not None:
                with contextlib.suppress(Exception):
                    group.stop()
        host.close()


def crash_poison(h: Harness, cluster: RabbitCluster, vhost: str, orders: int) -> Outcome:
    """T8 on the cluster's quorum queues: a message that kills its worker process every time it
    runs, among orders. The crash guard parks it (three runs, four deliveries) below RabbitMQ's
    own delivery limit, which stays the backstop for consumers without our middleware."""
    from devtools.chaos import scenarios

    limit = 5  # the default, as the module's other runs declared the queues
    env = {**cluster_env(cluster, vhost), "SHOPJOBS_QUEUE_DELIVERY_LIMIT": str(limit)}
    with publishing_to(cluster, vhost):
        outcome = scenarios.crash_poison(h, orders, poisons=1, env=env)
    outcome.row = "C3"
    outcome.scenario = "crash poison on a quorum queue of the cluster"
    outcome.evidence["delivery_limit"] = limit
    outcome.evidence["jobs"] = ledger_count()
    outcome.evidence["chaos_queue_leader"] = cluster.queue_leaders(vhost).get(
        chaos_actors.QUEUE, ""
    )
    return outcome
