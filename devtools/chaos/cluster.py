"""Scale-out faults on a private 3-node RabbitMQ cluster with quorum queues.

The worker group, the relays inside it and this process's after-commit publishes all reach the
cluster through one node list (``SHOPJOBS_AMQP_URL`` with ``;``); the queues are quorum queues,
declared by the workers through the first node, which so holds their leaders. Stopping that node
under load takes away, at once, the node every consumer is connected to and the leader of every
queue: consumers must fail over to a live node, a new leader must be elected, and nothing may
be lost, stranded or done twice. The node is then started again on its data and rejoins.

The faults are steps (``stop_node``, ``cut_host``) that a scenario strings together under one
load; ``node_lost_and_host_cut`` runs both in one run of orders, one after the other.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import dramatiq
from sqlalchemy import func, or_, select
from sqlalchemy.engine import make_url

from devtools.chaos import actors as chaos_actors
from devtools.chaos import load as shop_load
from devtools.chaos.audit import OPEN_LEDGER
from devtools.chaos.harness import (
    Harness,
    Outcome,
    at_progress,
    ledger_count,
    redeliveries,
    when,
)
from devtools.chaos.load import Load
from devtools.chaos.scenarios import BACKOFF
from devtools.private.cluster import RabbitCluster
from devtools.processes import Worker
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


def stop_node(
    cluster: RabbitCluster,
    vhost: str,
    sell: Callable[[], object],
    groups: Sequence[Worker],
    down_s: float = 10,
) -> tuple[dict[str, Any], float]:
    """Stop the node holding the orders queue's leader (the one the consumers use) for
    ``down_s``, while ``sell()`` keeps the shop selling, then start it again on its data and
    wait until it has rejoined: the fault's evidence and when the cluster was whole again."""
    leaders_before = cluster.queue_leaders(vhost)
    victim = cluster.node(leaders_before.get("orders") or cluster.nodes[0].node)
    stopped_at = time.monotonic()
    victim.stop()  # returns once the node's VM has exited (its pid file's process)
    down_at = time.monotonic()
    # a probe on the idle chaos queue shows the consumers and the publishers back on a live
    # node (jobs prefetched before the stop prove nothing, and an order's first step waits
    # behind the orders queue's backlog); the shop keeps selling meanwhile
    with session_scope() as s:
        probe = outbox.enqueue(s, chaos_actors.probe, 1)
    sell()
    probe_started = when(lambda: _started_at(probe), 120, "a probe sent after the stop to start")
    assert probe_started is not None  # when() returns a truthy value
    leaders_during = cluster.queue_leaders(vhost)
    threading.Event().wait(max(0.0, down_s - (time.monotonic() - stopped_at)))
    victim.start(keep_data=True)
    cluster.wait_running(len(cluster.nodes))
    back_at = time.monotonic()
    return {
        "node_stopped": victim.node,
        "orders_leader_before": leaders_before.get("orders"),
        "orders_leader_during": leaders_during.get("orders"),
        "stop_took_s": round(down_at - stopped_at, 1),
        "consumers_resumed_in_s": round(probe_started - stopped_at, 1),
        "resumed_after_node_down_s": round(probe_started - down_at, 1),
        "consumer_restarts": sum(_restarts(group) for group in groups),
        "rejoined_nodes": len(cluster.running_nodes()),
    }, back_at


def _restarts(group: Worker) -> int:
    return group.log().count("Restarting consumer")


class CutOffHost:
    """A worker "host" of its own: a network namespace of the test's, reached over a veth link.

    Its worker group runs inside the namespace (``prefix``, ``ip netns exec``), so every
    connection it makes crosses the link: fault proxies on the link's host end forward to the
    cluster's nodes, PostgreSQL and every stand-in the environment names on loopback (payments,
    warehouse, carrier, SMTP, SMS). ``cut()`` takes the link's host end down: the host vanishes
    from the network mid-conversation, as a machine does when its switch port dies, and what it
    sends is lost rather than refused.
    """

    def __init__(self, cluster: RabbitCluster, vhost: str) -> None:
        from devtools.chaos.netns import Partition

        self.partition = Partition()
        self.proxies: list[Any] = []
        try:
            nodes = []
            for node in cluster.nodes:
                host, port = self._through_link("127.0.0.1", node.port)
                nodes.append(f"amqp://guest:guest@{host}:{port}/{vhost}")
            database = make_url(os.environ["SHOPJOBS_DATABASE_URL"])
            host, port = self._through_link(database.host or "127.0.0.1", database.port or 5432)
            self.env = {
                **self._stand_ins(),
                "SHOPJOBS_AMQP_URL": ";".join(nodes),
                "SHOPJOBS_DATABASE_URL": database.set(host=host, port=port).render_as_string(
                    hide_password=False
                ),
            }
        except BaseException:
            self.close()
            raise
        self.prefix = self.partition.exec_prefix()

    def _through_link(self, host: str, port: int) -> tuple[str, int]:
        """A proxy on the link's host end forwarding to ``host:port``; its address."""
        from devtools.chaos.proxy import FaultProxy

        proxy = FaultProxy((host, port), listen=self.partition.listen_host()).start()
        self.proxies.append(proxy)
        return proxy.address

    def _stand_ins(self) -> dict[str, str]:
        """The environment's loopback services (``SHOPJOBS_*`` URLs on 127.0.0.1, the SMTP
        host and port) rewritten to proxies on the link, and the link's address allowed to the
        outbound guard."""
        env: dict[str, str] = {}

        def through(match: re.Match[str]) -> str:
            host, port = self._through_link("127.0.0.1", int(match[1]))
            return f"//{host}:{port}"

        for name, value in list(os.environ.items()):
            if name.startswith("SHOPJOBS_") and name not in (
                "SHOPJOBS_AMQP_URL",
                "SHOPJOBS_DATABASE_URL",
            ):
                rewritten = _LOOPBACK.sub(through, value)
                if rewritten != value:
                    env[name] = rewritten
        if (
            os.environ.get("SHOPJOBS_SMTP_HOST") == "127.0.0.1"
            and "SHOPJOBS_SMTP_PORT" in os.environ
        ):
            host, port = self._through_link("127.0.0.1", int(os.environ["SHOPJOBS_SMTP_PORT"]))
            env.update({"SHOPJOBS_SMTP_HOST": host, "SHOPJOBS_SMTP_PORT": str(port)})
        allowed = os.environ.get("SHOPJOBS_OUTBOUND_ALLOWED_HOSTS", "")
        env["SHOPJOBS_OUTBOUND_ALLOWED_HOSTS"] = ",".join(
            h for h in (allowed, self.partition.host_ip) if h
        )
        return env

    def cut(self) -> None:
        self.partition.cut(far_end="host")

    def heal(self) -> None:
        self.partition.heal()

    def close(self) -> None:
        for proxy in self.proxies:
            with contextlib.suppress(Exception):
                proxy.stop()
        self.partition.close()


_LOOPBACK = re.compile(r"//127\.0\.0\.1:(\d+)")


def cut_host(
    host: CutOffHost, sell: Callable[[], object], cut_s: float = 30
) -> tuple[dict[str, Any], float]:
    """Cut ``host`` off the network for ``cut_s`` while ``sell()`` keeps the shop selling, then
    bring its link back: the fault's evidence and when it was healed. Its unacked messages go
    back to the queues when RabbitMQ finds its connections dead (heartbeats) and another host
    finishes them; its in-flight jobs cannot commit, so nothing it did counts twice."""
    redelivered_before = redeliveries()
    host.cut()
    cut_at = time.monotonic()
    sell()
    threading.Event().wait(max(0.0, cut_s - (time.monotonic() - cut_at)))
    host.heal()
    return {"cut_s": cut_s, "redeliveries_before_cut": redelivered_before}, time.monotonic()


def node_lost_and_host_cut(
    h: Harness,
    cluster: RabbitCluster,
    vhost: str,
    orders: int,
    down_s: float = 10,
    cut_s: float = 30,
) -> Outcome:
    """Both scale-out faults in one run under load, on two worker hosts (one on loopback, one
    behind a veth link): the node holding the queues' leaders is stopped and restarted, and
    once it has rejoined, the second host is cut off the network and comes back. Orders keep
    arriving during each fault; the run ends with the invariant audit."""
    load = Load()
    products = shop_load.catalogue(load, h.rng)
    common = {**BACKOFF, **cluster_env(cluster, vhost)}
    batches = [orders * 2 // 5, orders * 3 // 10]
    batches.append(orders - sum(batches))

    def sell(count: int) -> Callable[[], object]:
        return lambda: shop_load.orders(load, h.rng, count, products)

    # two hosts, each in a namespace of its own behind its link; the first starts first: it
    # declares the queues through the first node, which so holds their leaders. Only the
    # second is ever cut off.
    first, host = CutOffHost(cluster, vhost), None
    steady: Worker | None = None
    remote: Worker | None = None
    try:
        steady = h.workers("host-1", env={**common, **first.env}, prefix=first.prefix)
        host = CutOffHost(cluster, vhost)
        remote = h.workers("host-2", env={**common, **host.env}, prefix=host.prefix)
        # each host's supervisor and workers really live in a namespace, each its own
        namespaces = {
            name: [
                os.readlink(f"/proc/{pid}/ns/net")
                for pid in (group.pid, *group.worker_pids().values())
            ]
            for name, group in (("host-1", steady), ("host-2", remote))
        }
        with publishing_to(cluster, vhost):
            sell(batches[0])()
            at_progress(load, 0.3, timeout=300)
            node, _ = stop_node(cluster, vhost, sell(batches[1]), (steady, remote), down_s)
            # the cut lands on a working host again, not on an idle one
            at_progress(load, 0.5, timeout=300)
            restarts_before_cut = _restarts(remote)
            cut, healed_at = cut_host(host, sell(batches[2]), cut_s)
            evidence: dict[str, Any] = {**node, **cut}
            outcome = h.finish(
                "C1+C2",
                f"a cluster node stopped {down_s:.0f}s and restarted, then a worker host cut "
                f"off the network for {cut_s:.0f}s, under load",
                load,
                1 + host.partition.cuts,
                evidence,
                healed_at,
                None,
            )
        evidence["cut_host_consumer_restarts"] = _restarts(remote) - restarts_before_cut
        evidence["redeliveries_since_cut"] = (
            evidence["redeliveries"] - evidence["redeliveries_before_cut"]
        )
        evidence["open_ledger_rows"] = _open_rows()
        evidence["jobs"] = ledger_count()  # ledger rows: every message the run sent
        own = os.readlink("/proc/self/ns/net")
        evidence["hosts_namespaces"] = {
            name: sorted(set(links)) for name, links in namespaces.items()
        }
        evidence["processes_per_host"] = {name: len(links) for name, links in namespaces.items()}
        evidence["hosts_apart"] = own not in namespaces["host-1"] + namespaces[
            "host-2"
        ] and not set(namespaces["host-1"]) & set(namespaces["host-2"])
        evidence["steady_host_deaths"] = steady.deaths()
        evidence["remote_host_deaths"] = remote.deaths()
        return outcome
    finally:
        for group in (steady, remote):
            if group is not None:
                with contextlib.suppress(Exception):
                    group.stop()
        for made in (first, host):
            if made is not None:
                made.close()


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
