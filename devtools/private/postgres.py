"""A private PostgreSQL instance: Debian's initdb and pg_ctl into a scratch folder, a free port.

A fault test that restarts or crashes PostgreSQL does it to an instance of its own instead of
the machine's cluster (which everyone else's tests use). The server refuses to run as root, so
every command runs as the ``postgres`` user (``runuser``) when we are root; authentication is
``trust`` on 127.0.0.1 and the folder's own socket directory.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import threading
import time

import psycopg2

from devtools.ports import free_port

_pause = threading.Event()
SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "max_connections": "200",
    "shared_buffers": "64MB",
    # the data folder lives as long as one test run: an OS crash is not among its faults, a
    # server crash (-m immediate) still replays the WAL from the page cache
    "fsync": "off",
    "full_page_writes": "off",
    "log_min_messages": "warning",
}


def bin_dir() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return os.path.dirname(found[-1]) if found else None


def available() -> str | None:
    """Why a private instance cannot run here, or None."""
    if bin_dir() is None:
        return "no /usr/lib/postgresql/*/bin/pg_ctl: PostgreSQL's server is not installed"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no postgres user to run the server as"
    return None


class PostgresInstance:
    """One private server on 127.0.0.1:``port`` with its data in ``base_dir/data``.

    Parameters:
      base_dir: the instance's scratch folder; wiped at start.
      port: a free one when not given.
    """

    def __init__(self, base_dir: str, port: int | None = None) -> None:
        self.base_dir = base_dir
        self.data_dir = os.path.join(base_dir, "data")
        self.port = port or free_port()
        self.bin = bin_dir() or "/usr/lib/postgresql/15/bin"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"

    def _as_owner(self, command: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command

    def _run(self, *args: str, timeout: float = 120) -> None:
        out = subprocess.run(
            self._as_owner(list(args)), check=False, capture_output=True, text=True, timeout=timeout
        )
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed: {(out.stderr or out.stdout).strip()}")

    def pg_ctl(self, *args: str, timeout: float = 120) -> None:
        """``pg_ctl -D <data> -w <args>`` as the data folder's owner."""
        log = os.path.join(self.base_dir, "server.log")
        self._run(os.path.join(self.bin, "pg_ctl"), "-D", self.data_dir, "-l", log, "-w",
                  "-t", str(int(timeout)), *args, timeout=timeout + 10)  # fmt: skip

    def start(self, timeout: float = 60) -> PostgresInstance:
        """initdb (first time), start, and return once it accepts connections."""
        if not os.path.exists(os.path.join(self.data_dir, "PG_VERSION")):
            shutil.rmtree(self.base_dir, ignore_errors=True)
            os.makedirs(self.data_dir)
            os.chmod(self.base_dir, 0o755)
            for parent in _parents(self.base_dir):
                os.chmod(parent, os.stat(parent).st_mode | 0o011)  # traversable by postgres
            if os.geteuid() == 0:
                owner = pwd.getpwnam("postgres")
                for path in (self.base_dir, self.data_dir):
                    os.chown(path, owner.pw_uid, owner.pw_gid)
            self._run(
                os.path.join(self.bin, "initdb"), "-D", self.data_dir, "-U", "postgres",
                "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions",
            )  # fmt: skip
            settings = {**SETTINGS, "port": str(self.port), "unix_socket_directories": "'.'"}
            with open(os.path.join(self.data_dir, "postgresql.conf"), "a") as fh:
                fh.writelines(f"{k} = {v}\n" for k, v in settings.items())
        self.pg_ctl("start", timeout=timeout)
        self.wait_up(timeout)
        return self

    def wait_up(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg2.connect(
                    host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
                    connect_timeout=2,
                ).close()  # fmt: skip
                return
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                _pause.wait(0.2)

    def pid(self) -> int | None:
        path = os.path.join(self.data_dir, "postmaster.pid")
        with contextlib.suppress(OSError, ValueError), open(path) as fh:
            return int(fh.readline().strip())
        return None

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (pg_ctl), then by its PID if pg_ctl could not."""
        pid = self.pid()
        if pid is None:
            return
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self.pg_ctl("stop", "-m", mode, timeout=60)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 0)
            os.kill(pid, signal.SIGQUIT)
            _pause.wait(1)
            os.kill(pid, signal.SIGKILL)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.base_dir, ignore_errors=True)


def _parents(path: str) -> list[str]:
    parents = []
    path = os.path.dirname(os.path.abspath(path))
    while path not in ("/", ""):
        parents.append(path)
        path = os.path.dirname(path)
    return parents
