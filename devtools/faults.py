"""Faults of the services this process uses, for the main job, the chaos tests and the soak.

Each one is what an operator (or bad luck) does to production: a PostgreSQL restart or crash,
killed database sessions, RabbitMQ stopped and started, its connections closed, its disk alarm
raised, its consumer_timeout lowered. Every function restores what it broke before it returns (or in its ``finally``) and
says how long the service was away.

They act on the instances the environment names: private ones (``devtools.private``: the node
in ``SHOPJOBS_RABBITMQ_NODE``, the data folder in ``SHOPJOBS_PGDATA``), which is how the chaos
suite and the soak run, beside everyone else's tests; or, when none is named, the machine's own
services (an operator's main job), which every other run on the machine shares.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator

import psycopg2

from devtools import devservices
from devtools.private.postgres import PostgresInstance

_pause = threading.Event()


class FaultUnavailable(RuntimeError):
    """The tool this fault needs is missing here (the reason is the message)."""


def _run(command: list[str], timeout: float = 120, env: dict[str, str] | None = None) -> str:
    out = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {(out.stderr or out.stdout).strip()}")
    return out.stdout


def _private_postgres() -> PostgresInstance | None:
    data_dir = os.environ.get("SHOPJOBS_PGDATA")
    if not data_dir:
        return None
    instance = PostgresInstance(os.path.dirname(data_dir), devservices.address("postgresql")[1])
    instance.data_dir = data_dir
    return instance


def _cluster() -> list[str]:
    """``pg_ctlcluster`` arguments of the machine's cluster serving port 5432."""
    if not shutil.which("pg_lsclusters") or not shutil.which("pg_ctlcluster"):
        raise FaultUnavailable(
            "pg_ctlcluster is not installed: PostgreSQL cannot be restarted here"
        )
    for line in _run(["pg_lsclusters", "-h"]).splitlines():
        version, name, port = line.split()[:3]
        if port == "5432":
            return ["pg_ctlcluster", "--skip-systemctl-redirect", version, name]
    raise FaultUnavailable("no PostgreSQL cluster of this machine listens on 5432")


def _wait_postgres(deadline_s: float = 60) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        with contextlib.suppress(psycopg2.OperationalError):
            psycopg2.connect(devservices.postgres_admin_dsn()).close()
            return
        _pause.wait(0.2)
    raise RuntimeError(f"PostgreSQL did not accept connections within {deadline_s:.0f}s")


def restart_postgres(mode: str = "fast") -> float:
    """Restart the cluster (``fast``: sessions rolled back; ``immediate``: a crash, then recovery).

    Returns the seconds it did not accept connections.
    """
    private = _private_postgres()
    started = time.monotonic()
    if private is not None:
        if mode == "immediate":
            private.pg_ctl("stop", "-m", "immediate")
            private.pg_ctl("start")
        else:
            private.pg_ctl("restart", "-m", mode)
        _wait_postgres()
        return time.monotonic() - started
    cluster = _cluster()
    if mode == "immediate":
        _run([*cluster, "stop", "-m", "immediate"])
        _run([*cluster, "start"])
    else:
        _run([*cluster, "restart", "-m", mode])
    _wait_postgres()
    return time.monotonic() - started


def stop_postgres_for(seconds: float) -> float:
    """Stop the cluster (fast) for ``seconds``, then start it; returns how long it was away."""
    private = _private_postgres()
    started = time.monotonic()
    if private is not None:
        private.pg_ctl("stop", "-m", "fast")
        try:
            _pause.wait(seconds)
        finally:
            private.pg_ctl("start")
            _wait_postgres()
        return time.monotonic() - started
    cluster = _cluster()
    _run([*cluster, "stop", "-m", "fast"])
    try:
        _pause.wait(seconds)
    finally:
        _run([*cluster, "start"])
        _wait_postgres()
    return time.monotonic() - started


def terminate_sessions(database: str, application_prefix: str = "shopjobs") -> int:
    """``pg_terminate_backend`` every session of ``database`` opened by our processes."""
    with contextlib.closing(psycopg2.connect(devservices.postgres_admin_dsn())) as conn:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = %s AND application_name LIKE %s AND pid <> pg_backend_pid()",
                (database, f"{application_prefix}%"),
            )
            return int(cur.fetchone()[0])


def _rabbitmqctl(*args: str, timeout: float = 120) -> str:
    try:
        command, env = devservices.rabbitmqctl_command(*args)
    except RuntimeError as exc:
        raise FaultUnavailable(str(exc)) from exc
    return _run(command, timeout=timeout, env=env)


def stop_rabbitmq() -> None:
    _rabbitmqctl("stop_app")


def start_rabbitmq() -> None:
    _rabbitmqctl("start_app")
    _rabbitmqctl("await_startup")
    host, port = devservices.address("rabbitmq")
    if not devservices.wait_reachable(host, port, 60):
        raise RuntimeError(f"RabbitMQ did not come back on {host}:{port}")


@contextlib.contextmanager
def rabbitmq_stopped() -> Iterator[None]:
    """RabbitMQ's application stopped for the block, started again whatever happens."""
    stop_rabbitmq()
    try:
        yield
    finally:
        start_rabbitmq()


def rabbitmq_outage(seconds: float) -> float:
    """Stop RabbitMQ for ``seconds``; returns how long it was away."""
    started = time.monotonic()
    with rabbitmq_stopped():
        _pause.wait(seconds)
    return time.monotonic() - started


def close_connections(vhost: str, why: str = "chaos test") -> int:
    """Close every AMQP connection to ``vhost`` (clients see a forced close); returns how many."""
    listed = _rabbitmqctl("list_connections", "vhost", "name")
    names = [
        line.split("\t", 1)[1]
        for line in listed.splitlines()
        if "\t" in line and line.split("\t", 1)[0] == vhost
    ]
    if names:
        # one call, as the catalogue's close_all_connections (one close_connection per
        # connection took ~1.5 s each on a loaded machine: 40 connections held T3 for a minute)
        _rabbitmqctl("close_all_connections", "--vhost", vhost, why)
    return len(names)


def delete_queue(vhost: str, queue: str) -> int | None:
    """Delete ``queue``; how many ready messages it dropped (None when rabbitmqctl did not say)."""
    said = _rabbitmqctl("-p", vhost, "delete_queue", queue)
    found = re.search(r"deleted with (\d+) (ready )?messages?", said)
    return int(found.group(1)) if found else None


def _rabbit_env(key: str) -> str:
    return _rabbitmqctl("eval", f"application:get_env(rabbit, {key}).").strip()


@contextlib.contextmanager
def consumer_timeout(ms: int) -> Iterator[None]:
    """RabbitMQ's ``consumer_timeout`` at ``ms`` for the block, the previous value (or none)
    after. RabbitMQ 3.10 has it node-wide only, and a channel reads it when it opens: start the
    consumers inside."""
    before = _rabbit_env("consumer_timeout")
    _rabbitmqctl("eval", f"application:set_env(rabbit, consumer_timeout, {int(ms)}).")
    try:
        yield
    finally:
        found = re.fullmatch(r"\{ok,(\d+)\}", before)
        if found:
            _rabbitmqctl("eval", f"application:set_env(rabbit, consumer_timeout, {found[1]}).")
        else:
            _rabbitmqctl("eval", "application:unset_env(rabbit, consumer_timeout).")


def broker_log_path() -> str:
    """The node's log file (where it says which channel it closed, and why)."""
    listed = _rabbitmqctl("eval", "rabbit:log_locations().")
    paths = [p for p in re.findall(r'"([^"]+\.log)"', listed) if not p.endswith("_upgrade.log")]
    if len(paths) != 1:
        raise FaultUnavailable(f"cannot tell the node's log file among {listed.strip()}")
    return paths[0]


def _disk_free_limit() -> str:
    status = _rabbitmqctl("status")
    match = re.search(r"Low free disk space watermark: ([\d.]+) gb", status)
    return f"{float(match.group(1)) * 1000:.0f}MB" if match else "50MB"


@contextlib.contextmanager
def disk_alarm() -> Iterator[None]:
    """RabbitMQ's disk alarm for the block: every publisher on the node is blocked."""
    previous = _disk_free_limit()
    _rabbitmqctl("set_disk_free_limit", "1000000GB")
    try:
        yield
    finally:
        _rabbitmqctl("set_disk_free_limit", previous)


def is_root() -> bool:
    return os.geteuid() == 0
