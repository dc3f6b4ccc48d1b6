"""A private 3-node RabbitMQ cluster on this machine, for the scale-out tests and benchmarks.

The nodes are ``RabbitNode``s sharing one scratch HOME (the Erlang cookie). The first boots
alone; the others boot in parallel and join it (``stop_app``, ``join_cluster``, ``start_app``),
which is deterministic where simultaneous peer discovery can race. Each node is then checked
with ``rabbitmq-diagnostics check_running`` and the cluster with ``cluster_status``. The
machine's own node on 5672 is never touched; every node is stopped by its pid file.

Run by hand: ``python -m devtools.private.cluster up [--dir D]`` prints the node URL list and
keeps the cluster until ``python -m devtools.private.cluster down --dir D`` (or Ctrl-C).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import shutil
import signal
import tempfile
import threading
import time

from devtools.private.rabbitmq import RabbitNode, make_home

NAMES = ("shopjobs-a", "shopjobs-b", "shopjobs-c")
STATE_FILE = "cluster.json"


class RabbitCluster:
    """``size`` private nodes joined into one cluster.

    Parameters:
      base_dir: scratch folder (one sub-folder per node, the shared HOME); removed at stop.
      size: number of nodes (3 for quorum queues that survive one node lost).
      prefix: node short names are ``<prefix>-a``, ``-b``, ...; never ``rabbit`` (epmd is shared).
      extra_config: lines appended to every node's ``rabbitmq.conf``.
    """

    def __init__(
        self,
        base_dir: str | None = None,
        size: int = 3,
        prefix: str = "shopjobs",
        extra_config: tuple[str, ...] = (),
    ) -> None:
        self.base_dir = base_dir or tempfile.mkdtemp(prefix="shopjobs-cluster-")
        self.home = make_home(os.path.join(self.base_dir, "home"))
        self.nodes = [
            RabbitNode(
                os.path.join(self.base_dir, chr(ord("a") + i)),
                f"{prefix}-{chr(ord('a') + i)}",
                home=self.home,
                extra_config=extra_config,
            )
            for i in range(size)
        ]
        self.boot_s: float | None = None

    def url(self, vhost: str = "%2F") -> str:
        """Every node's URL, separated by ``;`` (what ``SHOPJOBS_AMQP_URL`` takes)."""
        return ";".join(node.url(vhost) for node in self.nodes)

    def start(self, timeout: float = 180) -> RabbitCluster:
        started = time.monotonic()
        try:
            first, *others = self.nodes
            first.start(timeout)
            with concurrent.futures.ThreadPoolExecutor(len(others) or 1) as pool:
                list(pool.map(lambda node: node.start(timeout), others))
            for node in others:
                node.ctl("stop_app")
                node.ctl("join_cluster", first.node)
                node.ctl("start_app")
            for node in self.nodes:
                node.wait_up(timeout)
                node.ctl("check_running", tool="rabbitmq-diagnostics")
            self.wait_running(len(self.nodes), timeout)
        except BaseException:
            self.stop()
            raise
        self.boot_s = time.monotonic() - started
        return self

    def running_nodes(self, via: RabbitNode | None = None) -> list[str]:
        """The cluster's running nodes, as a live node sees them."""
        for node in [via] if via else self.nodes:
            if node is None or node.proc is None:
                continue
            out = node.ctl("cluster_status", "--formatter", "json", check=False, timeout=30)
            if out:
                return sorted(json.loads(out).get("running_nodes", []))
        return []

    def wait_running(self, count: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while len(self.running_nodes()) != count:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"cluster has {self.running_nodes()} running, expected {count} nodes"
                )
            threading.Event().wait(0.5)

    def add_vhost(self, vhost: str) -> None:
        """A vhost with full permissions for guest (vhosts are cluster-wide)."""
        node = next(n for n in self.nodes if n.proc is not None)
        node.ctl("add_vhost", vhost)
        node.ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")

    def queue_leaders(self, vhost: str) -> dict[str, str]:
        """Quorum queue name -> the node holding its leader."""
        node = next(n for n in self.nodes if n.proc is not None)
        out = node.ctl(
            "list_queues", "-p", vhost, "name", "leader", "--formatter", "json", timeout=60
        )
        return {row["name"]: row.get("leader", "") for row in json.loads(out or "[]")}

    def node(self, name: str) -> RabbitNode:
        return next(n for n in self.nodes if n.node == name)

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def save(self) -> None:
        state = {
            "url": self.url(),
            "nodes": [{"node": n.node, "port": n.port, "pid": n.pid()} for n in self.nodes],
        }
        with open(os.path.join(self.base_dir, STATE_FILE), "w") as fh:
            json.dump(state, fh)


def _down(base_dir: str) -> int:
    """Stop the nodes a ``up`` left running, by the pids it recorded."""
    path = os.path.join(base_dir, STATE_FILE)
    with open(path) as fh:
        state = json.load(fh)
    for node in state["nodes"]:
        if node["pid"]:
            try:
                os.kill(node["pid"], signal.SIGTERM)
            except ProcessLookupError:
                continue
    deadline = time.monotonic() + 60
    for node in state["nodes"]:
        while node["pid"] and _alive(node["pid"]) and time.monotonic() < deadline:
            threading.Event().wait(0.2)
    shutil.rmtree(base_dir, ignore_errors=True)
    print(f"stopped {len(state['nodes'])} nodes")
    return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.private.cluster")
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "shopjobs-cluster"))
    parser.add_argument("--detach", action="store_true", help="leave the nodes running")
    args = parser.parse_args(argv)
    if args.action == "down":
        return _down(args.dir)
    cluster = RabbitCluster(args.dir).start()
    cluster.save()
    print(f"cluster of {len(cluster.nodes)} nodes up in {cluster.boot_s:.1f}s")
    print(f"SHOPJOBS_AMQP_URL='{cluster.url()}'")
    if args.detach:
        print(f"stop it with: python -m devtools.private.cluster down --dir {args.dir}")
        return 0
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    cluster.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
