"""The HTTP /metrics endpoints: a worker host's (every process of its instance) and the scheduler's.

A ``dramatiq`` instance serves from one fork process (``Metrics.forks``), started by the
instance's main process, which merges the files of all worker processes in the instance's
directory, marks dead processes' live gauges gone, and adds the queue collector. A port
already taken (a second instance on the host) is logged with what to do, and the workers run
on without an endpoint instead of failing.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import threading
from collections.abc import Sequence
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, multiprocess, start_http_server
from prometheus_client.registry import Collector

from jobcore import logs
from jobcore.metrics import multiproc
from jobcore.metrics.queues import QueueCollector
from jobcore.settings import JobSettings

logger = logging.getLogger(__name__)
_PID_FILE = re.compile(r"_(\d+)\.db$")


class InstanceCollector(multiprocess.MultiProcessCollector):
    """The instance's multiprocess files; live gauges of processes that died are dropped."""

    def __init__(self, path: str, registry: CollectorRegistry) -> None:
        super().__init__(registry, path=path)
        self.path = path

    def collect(self) -> Any:
        for name in glob.glob(os.path.join(self.path, "gauge_live*_*.db")):
            match = _PID_FILE.search(name)
            if match and not _pid_alive(int(match.group(1))):
                multiprocess.mark_process_dead(int(match.group(1)), self.path)
        return super().collect()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def worker_registry(
    path: str, settings: Any, queues: Sequence[str], extra: Sequence[Collector] = ()
) -> CollectorRegistry:
    registry = CollectorRegistry()
    InstanceCollector(path, registry)
    registry.register(QueueCollector(settings, queues))
    for collector in extra:
        registry.register(collector)
    return registry


def serve(registry: CollectorRegistry, bind: str, port: int, what: str) -> Any | None:
    """Start serving ``registry`` in a thread; None (logged) when the port is taken."""
    try:
        server, _ = start_http_server(port, addr=bind, registry=registry)
    except OSError as exc:
        logger.error(
            "%s metrics endpoint cannot listen on %s:%d (%s); another instance on this host "
            "may hold it: give this one its own port. Running without an endpoint.",
            what,
            bind,
            port,
            exc.strerror or exc,
        )
        return None
    logger.info("%s metrics on http://%s:%d/metrics", what, bind, server.server_port)
    return server


def serve_worker_metrics(
    settings: JobSettings, queues: Sequence[str], extra: Sequence[Collector] = ()
) -> int:
    """Body of a ``dramatiq`` instance's fork: serve its merged metrics until SIGTERM.

    The application's fork function (named by the Metrics middleware) builds its settings
    and passes its queue names: a fork process starts from an import path, without arguments.
    ``extra`` are the application's scrape-time collectors.
    """
    logs.configure(settings.log_format, settings.log_level, settings=settings)
    if settings.metrics_port == 0:
        return 0
    path = multiproc.instance_dir(os.getppid())
    os.makedirs(path, exist_ok=True)
    registry = worker_registry(path, settings, queues, extra)
    if serve(registry, settings.metrics_bind, settings.metrics_port, "worker") is None:
        return 1
    threading.Event().wait()  # SIGTERM ends the fork (Dramatiq's handler exits)
    return 0


def serve_process_metrics(bind: str, port: int, what: str) -> Any | None:
    """Serve this single process's metrics (the scheduler daemon); port 0 disables."""
    if port == 0:
        return None
    return serve(REGISTRY, bind, port, what)
