"""Prometheus metrics of the shop's processes.

Importing this package puts a ``dramatiq`` worker process's metrics in its instance's own
multiprocess directory (``multiproc.setup``) before any metric exists: prometheus-client picks
its storage when a metric's value is made, so ``broker.py`` imports this package first.
Everywhere else (tests, the scheduler, the CLI) metrics stay in the process's memory.
"""

from __future__ import annotations

from jobcore.metrics import multiproc

multiproc.setup()
