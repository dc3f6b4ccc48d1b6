"""Local services for development, tests and the main job: start them if stopped, make vhosts.

The start commands are the machine's own (Debian packages); on a machine where RabbitMQ or
PostgreSQL run elsewhere, nothing is started and only reachability is checked. When the
environment names a private node (``SHOPJOBS_RABBITMQ_NODE``, see ``devtools.private``), the
RabbitMQ CLI calls here go to that node, and ``address()`` follows the URLs in the environment.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from urllib.parse import urlsplit

from jobcore import amqp

START_COMMANDS = {
    "postgresql": lambda: (
        [
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"]
            for version in sorted(os.listdir("/etc/postgresql"))
        ]
        if os.path.isdir("/etc/postgresql")
        else []
    ),
    "rabbitmq": lambda: (
        [["rabbitmq-server", "-detached"]] if shutil.which("rabbitmq-server") else []
    ),
}
PORTS = {"postgresql": ("127.0.0.1", 5432), "rabbitmq": ("127.0.0.1", 5672)}
# RabbitMQ's own exporter: queue depths and consumers that stay scrapeable while the workers
# (whose endpoint serves shopjobs_queue_*) are down; deploy/prometheus.yml scrapes it
PROMETHEUS_PLUGIN = "rabbitmq_prometheus"
PROMETHEUS_PORT = ("127.0.0.1", 15692)


def address(service: str) -> tuple[str, int]:
    """Where this process's ``service`` is: the host and port of its URL in the environment."""
    variable = "SHOPJOBS_AMQP_URL" if service == "rabbitmq" else "SHOPJOBS_DATABASE_URL"
    default_host, default_port = PORTS[service]
    url = os.environ.get(variable)
    if not url:
        return default_host, default_port
    parts = urlsplit(url)
    return parts.hostname or default_host, parts.port or default_port


def rabbitmqctl_command(*args: str) -> tuple[list[str], dict[str, str] | None]:
    """``rabbitmqctl -q <args>`` for the node this process uses, and the environment to run it in.

    The machine's node through the system's wrapper; a private node (``SHOPJOBS_RABBITMQ_NODE``)
    through the real script with the node's scratch HOME (its cookie).
    """
    node = os.environ.get("SHOPJOBS_RABBITMQ_NODE")
    if node:
        from devtools.private import rabbitmq

        home = os.environ["SHOPJOBS_RABBITMQ_HOME"]
        return [*rabbitmq.ctl_command(node), *args], rabbitmq.ctl_env(home)
    if not shutil.which("rabbitmqctl"):
        raise RuntimeError("rabbitmqctl is not installed: cannot manage RabbitMQ on this machine")
    return ["rabbitmqctl", "-q", *args], None


def postgres_admin_dsn() -> str:
    """The ``postgres`` database of the server this process uses (libpq keywords)."""
    host, port = address("postgresql")
    return f"host={host} port={port} user=postgres dbname=postgres connect_timeout=5"


def reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_reachable(host: str, port: int, deadline_s: float) -> bool:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if reachable(host, port):
            return True
        time.sleep(0.25)
    return False


def ensure(service: str, deadline_s: float = 90.0) -> None:
    """Start ``service`` with the machine's command if its port does not answer."""
    host, port = PORTS[service]
    if reachable(host, port):
        return
    commands = START_COMMANDS[service]()
    if not commands:
        raise SystemExit(f"{service} is not reachable on {host}:{port} and cannot be started here")
    for command in commands:
        print(f"starting {service}: {' '.join(command)}", file=sys.stderr)
        subprocess.run(command, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    if not wait_reachable(host, port, deadline_s):
        raise SystemExit(f"{service} did not come up on {host}:{port} within {deadline_s:.0f}s")
    if service == "rabbitmq" and shutil.which("rabbitmqctl"):
        # the port may answer before the broker accepts logins
        subprocess.run(
            ["rabbitmqctl", "await_startup"], check=False, capture_output=True, timeout=120
        )


def rabbitmqctl(*args: str) -> None:
    command, env = rabbitmqctl_command(*args)
    out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    if out.returncode != 0:
        raise RuntimeError(
            f"rabbitmqctl {' '.join(args)} failed: {out.stderr.strip() or out.stdout.strip()}"
        )


def create_vhost(vhost: str, user: str = "guest") -> None:
    rabbitmqctl("add_vhost", vhost) if vhost not in list_vhosts() else None
    rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")


def delete_vhost(vhost: str) -> None:
    if vhost in list_vhosts():
        rabbitmqctl("delete_vhost", vhost)


def list_vhosts() -> list[str]:
    command, env = rabbitmqctl_command("list_vhosts", "name")
    out = subprocess.run(
        command,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [
        line.strip() for line in out.stdout.splitlines() if line.strip() and line.strip() != "name"
    ]


def enable_rabbitmq_exporter(deadline_s: float = 60.0) -> bool:
    """Enable ``rabbitmq_prometheus`` (:15692) on the local node if it is not yet.

    ``rabbitmq-plugins enable`` starts the plugin in the running node; it does not restart the
    broker, so connections and queues are untouched. False where it cannot be done here (no
    rabbitmq-plugins, a remote broker): the exporter is then the broker operator's to enable.
    """
    if reachable(*PROMETHEUS_PORT):
        return True
    if not shutil.which("rabbitmq-plugins"):
        return False
    done = subprocess.run(
        ["rabbitmq-plugins", "-q", "enable", PROMETHEUS_PLUGIN],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        print(
            f"could not enable {PROMETHEUS_PLUGIN}: {done.stderr.strip() or done.stdout.strip()}",
            file=sys.stderr,
        )
        return False
    return wait_reachable(*PROMETHEUS_PORT, deadline_s)


def main() -> None:
    for service in ("postgresql", "rabbitmq"):
        ensure(service)
    exporter = (
        f", its exporter {PROMETHEUS_PORT[0]}:{PROMETHEUS_PORT[1]}"
        if enable_rabbitmq_exporter()
        else f" (its exporter {PROMETHEUS_PLUGIN} is not enabled)"
    )
    print(
        f"services ready: postgresql 127.0.0.1:5432, rabbitmq 127.0.0.1:5672{exporter}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()


def purge_queues(amqp_url: str, names: list[str]) -> None:
    """Empty each named queue with its .DQ and .XQ; queues not declared yet are passed over."""
    import pika

    conn = amqp.connect(amqp_url)
    try:
        for name in names:
            for queue in (name, f"{name}.DQ", f"{name}.XQ"):
                channel = conn.channel()
                try:
                    channel.queue_purge(queue)
                    channel.close()
                except pika.exceptions.ChannelClosedByBroker:
                    pass  # 404: not declared yet
    finally:
        conn.close()
