"""A private RabbitMQ node beside the machine's own: own name, ports, cookie, files and data.

The machine's node (``rabbit@localhost`` on 5672) is shared by everyone on the machine; a fault
test that stops, alarms or reconfigures a broker does it to a node of its own, started here from
the package's real scripts (``/usr/lib/rabbitmq/bin``) with every file the system installation
would read replaced (../shared/rabbitmq-cluster-notes.md: env file, config, plugins, cookie in a
scratch HOME). ``RabbitNode`` is one node; a cluster is several sharing one ``home`` (cookie),
each given ``extra_config`` lines (peer discovery) before ``start()``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

from devtools.ports import free_port

BIN_DIR = os.environ.get("SHOPJOBS_RABBITMQ_BIN", "/usr/lib/rabbitmq/bin")
_pause = threading.Event()


def available() -> str | None:
    """Why a private node cannot run here, or None."""
    if not os.path.exists(os.path.join(BIN_DIR, "rabbitmq-server")):
        return f"RabbitMQ's scripts are not in {BIN_DIR} (set SHOPJOBS_RABBITMQ_BIN)"
    return None


def make_home(path: str, cookie: str = "SHOPJOBSPRIVATECOOKIE") -> str:
    """A scratch HOME holding the Erlang cookie every node and CLI call of a cluster shares."""
    os.makedirs(path, exist_ok=True)
    cookie_path = os.path.join(path, ".erlang.cookie")
    if not os.path.exists(cookie_path):
        with open(cookie_path, "w") as fh:
            fh.write(cookie)
        os.chmod(cookie_path, 0o400)
    return path


def ctl_command(node: str, tool: str = "rabbitmqctl") -> list[str]:
    """The real CLI (not the system's wrapper, which switches to the rabbitmq user's cookie)."""
    return [os.path.join(BIN_DIR, tool), "-q", "-n", node]


def ctl_env(home: str) -> dict[str, str]:
    return {**os.environ, "HOME": home, "RABBITMQ_CONF_ENV_FILE": os.path.join(home, "empty.env")}


class RabbitNode:
    """One private node, ``<name>@localhost`` on 127.0.0.1:``port``.

    Parameters:
      base_dir: the node's scratch folder (config, data, logs, pid file); wiped at start.
      name: the node's short name (never ``rabbit``: epmd is shared with the machine's node).
      home: the scratch HOME with the cookie (shared by a cluster's nodes); ``base_dir/home``.
      port, dist_port: AMQP and Erlang distribution ports; free ones when not given.
      extra_config: lines appended to its ``rabbitmq.conf`` (peer discovery, listeners, ...).
    """

    def __init__(
        self,
        base_dir: str,
        name: str,
        home: str | None = None,
        port: int | None = None,
        dist_port: int | None = None,
        extra_config: tuple[str, ...] = (),
    ) -> None:
        self.base_dir = base_dir
        self.node = f"{name}@localhost"
        self.home = home or os.path.join(base_dir, "home")
        self.port = port or free_port()
        self.dist_port = dist_port or free_port()
        self.extra_config = extra_config
        self.pid_file = os.path.join(base_dir, "node.pid")
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, vhost: str = "%2F") -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/{vhost}"

    def _write_files(self) -> dict[str, str]:
        shutil.rmtree(self.base_dir, ignore_errors=True)  # a data folder remembers its cluster
        for sub in ("mnesia", "log"):
            os.makedirs(os.path.join(self.base_dir, sub))
        make_home(self.home)
        files = {
            "empty.env": "",
            "rabbitmq.conf": "\n".join(
                ["loopback_users = none", "log.console = false", "log.file.level = info"]
                + list(self.extra_config)
            )
            + "\n",
            "advanced.config": "[].\n",
            "enabled_plugins": "[].\n",
        }
        for name, text in files.items():
            with open(os.path.join(self.base_dir, name), "w") as fh:
                fh.write(text)
        with open(os.path.join(self.home, "empty.env"), "w"):
            pass
        return self._environment()

    def _environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "HOME": self.home,
            "RABBITMQ_CONF_ENV_FILE": os.path.join(self.base_dir, "empty.env"),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONFIG_FILE": os.path.join(self.base_dir, "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": os.path.join(self.base_dir, "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": os.path.join(self.base_dir, "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": os.path.join(self.base_dir, "mnesia"),
            "RABBITMQ_LOG_BASE": os.path.join(self.base_dir, "log"),
            "RABBITMQ_PID_FILE": self.pid_file,
            "ERL_CRASH_DUMP": os.path.join(self.base_dir, "log", "erl_crash.dump"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def start(self, timeout: float = 90, *, keep_data: bool = False) -> RabbitNode:
        """Boot the node and return once it accepts AMQP connections.

        ``keep_data``: boot again on the data a stopped node left (a cluster member restarting
        rejoins its cluster with its queues); otherwise the folder is made anew.
        """
        env = self._environment() if keep_data else self._write_files()
        self._log = open(os.path.join(self.base_dir, "log", "server.out"), "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [os.path.join(BIN_DIR, "rabbitmq-server")],
            env=env,
            cwd=self.base_dir,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_up(timeout)
        return self

    def wait_up(self, timeout: float = 90) -> None:
        """Poll ``ping`` (``await_startup`` fails at once before epmd knows the node), then wait
        for the boot to finish and the AMQP port to answer."""
        deadline = time.monotonic() + timeout
        while self.ctl("ping", tool="rabbitmq-diagnostics", check=False, timeout=15) is None:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.node} exited while booting:\n{self.output()[-2000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.node} did not answer ping within {timeout:.0f}s")
            _pause.wait(0.5)
        self.ctl("await_startup", timeout=max(5, deadline - time.monotonic()))
        while not _reachable(self.port):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.node} does not listen on {self.port}")
            _pause.wait(0.2)

    def output(self) -> str:
        """What the server script printed (its boot errors land here)."""
        try:
            with open(os.path.join(self.base_dir, "log", "server.out"), errors="replace") as fh:
                return fh.read()
        except OSError:
            return ""

    def ctl(
        self, *args: str, tool: str = "rabbitmqctl", check: bool = True, timeout: float = 120
    ) -> str | None:
        """Run a CLI command against this node; its output (None when it failed and not check)."""
        try:
            out = subprocess.run(
                [*ctl_command(self.node, tool), *args],
                env=ctl_env(self.home),
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            if check:
                raise
            return None  # a loaded machine's CLI call: the caller polls again
        if out.returncode != 0:
            if check:
                raise RuntimeError(
                    f"{tool} -n {self.node} {' '.join(args)} failed: "
                    f"{(out.stderr or out.stdout).strip()}"
                )
            return None
        return out.stdout

    def pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError), open(self.pid_file) as fh:
            return int(fh.read().strip())
        return None

    def stop(self) -> None:
        """Stop the node (``stop PIDFILE`` waits for the VM to exit); kill it if that fails."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self.ctl("stop", self.pid_file, timeout=30)
            pid = self.pid()
            if self.proc.poll() is None and pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(15)
        self._log.close()
        self.proc = None


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False
