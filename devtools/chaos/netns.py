"""A network partition of the test's own: a namespace behind a veth link that can be cut.

Either the fault proxy listens inside the namespace and workers on the host reach it over the
veth pair (``listen``), or the workers themselves run inside the namespace (``exec_prefix``) and
reach proxies on the link's host end (``listen_host``); the proxies reach the services from the
host's namespace. Cutting the link (its far end down) drops
every packet, TCP's ACKs and keepalive answers included, which is what a partition is: libpq
can only notice it through its own timeouts. Needs root (CAP_NET_ADMIN) and ``ip``; nothing of
the host changes but one veth interface with a private /30, removed with the namespace.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import socket
import subprocess
import threading

CLONE_NEWNET = 0x40000000
PREFIX = "shopjobs-chaos-"


def available() -> str | None:
    """None when partitions can be made here, else why not."""
    if os.geteuid() != 0:
        return "needs root (CAP_NET_ADMIN) to make a network namespace and a veth link"
    if not shutil.which("ip"):
        return "needs iproute2's ip command"
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def _mac(interface: str, namespace: str | None = None) -> str:
    """The link-layer address of ``interface`` (in ``namespace``, or the host's)."""
    where = ["-n", namespace] if namespace else []
    shown = subprocess.run(
        ["ip", *where, "-o", "link", "show", interface],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    return shown.split("link/ether ")[1].split()[0]


def sweep() -> None:
    """Remove namespaces a killed test run left behind (their veth links go with them)."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    for line in out.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(PREFIX):
            pid = name.removeprefix(PREFIX).split("-")[0]
            if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
                subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


class Partition:
    """``host_ip`` (the host's end) and ``ns_ip`` (the namespace's end, where the proxy listens)."""

    _made = 0  # partitions this process made: each its own names and /30

    def __init__(self) -> None:
        k = Partition._made % 60
        Partition._made += 1
        if k == 0:
            sweep()
        n = os.getpid() % 250 + 1
        self.name = f"{PREFIX}{os.getpid()}-{k}"
        tag = f"sjc{os.getpid() % 100000}x{k}"
        self.host_if, self.ns_if = f"{tag}h", f"{tag}n"
        self.host_ip, self.ns_ip = f"10.213.{n}.{4 * k + 1}", f"10.213.{n}.{4 * k + 2}"
        _ip("netns", "add", self.name)
        try:
            _ip(
                "link",
                "add",
                self.host_if,
                "type",
                "veth",
                "peer",
                "name",
                self.ns_if,
                "netns",
                self.name,
            )
            _ip("addr", "add", f"{self.host_ip}/30", "dev", self.host_if)
            _ip("link", "set", self.host_if, "up")
            _ip("-n", self.name, "addr", "add", f"{self.ns_ip}/30", "dev", self.ns_if)
            _ip("-n", self.name, "link", "set", self.ns_if, "up")
            _ip("-n", self.name, "link", "set", "lo", "up")
            # permanent neighbour entries, both ways: once cut, packets leave and vanish (no ARP
            # failure answering "no route to host" at once), as they do on a partitioned network
            _ip(
                "neigh",
                "replace",
                self.ns_ip,
                "lladdr",
                _mac(self.ns_if, self.name),
                "dev",
                self.host_if,
                "nud",
                "permanent",
            )
            _ip(
                "-n",
                self.name,
                "neigh",
                "replace",
                self.host_ip,
                "lladdr",
                _mac(self.host_if),
                "dev",
                self.ns_if,
                "nud",
                "permanent",
            )
        except subprocess.CalledProcessError:
            self.close()
            raise
        self.cuts = 0
        self._cut_side = ""

    def exec_prefix(self) -> tuple[str, ...]:
        """The argv prefix that runs a command inside the namespace (a "host" of its own)."""
        return ("ip", "netns", "exec", self.name)

    def listen_host(self, port: int = 0) -> socket.socket:
        """A listening socket on the host's end (``host_ip``), which processes inside the
        namespace reach over the link."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host_ip, port))
        sock.listen(128)
        sock.setblocking(False)
        return sock

    def listen(self, port: int = 0) -> socket.socket:
        """A listening socket inside the namespace, on ``ns_ip`` (made on a thread of its own:
        ``setns`` moves only the calling thread)."""
        made: list[socket.socket | BaseException] = []

        def inside() -> None:
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                with open(f"/var/run/netns/{self.name}") as ns:
                    if libc.setns(ns.fileno(), CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), "setns failed")
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((self.ns_ip, port))
                sock.listen(128)
                sock.setblocking(False)
                made.append(sock)
            except BaseException as exc:  # noqa: BLE001  (handed to the caller)
                made.append(exc)

        thread = threading.Thread(target=inside, name="netns-listen")
        thread.start()
        thread.join(10)
        result = made[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def cut(self, far_end: str = "namespace") -> None:
        """Drop every packet between the host and the namespace: the far end of the link goes
        down, as seen from where the cut-off processes run (``"namespace"`` when they run on
        the host and talk to listeners inside; ``"host"`` when they run inside), so their own
        interface stays up and what they send vanishes instead of failing at once."""
        self._cut_side = far_end
        if far_end == "host":
            _ip("link", "set", self.host_if, "down")
        else:
            _ip("-n", self.name, "link", "set", self.ns_if, "down")
        self.cuts += 1

    def heal(self) -> None:
        if self._cut_side == "host":
            _ip("link", "set", self.host_if, "up")
        else:
            _ip("-n", self.name, "link", "set", self.ns_if, "up")

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            _ip("netns", "del", self.name)
        with contextlib.suppress(subprocess.CalledProcessError):
            _ip("link", "del", self.host_if)
