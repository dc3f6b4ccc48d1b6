"""The supervisor of a worker group: Dramatiq's worker processes, each replaced alone when it dies.

``arbiter.Supervisor`` is the main process, ``process.Child`` one supervised process (its body
is Dramatiq's own ``worker_process``/``fork_process``), ``policy.RestartPolicy`` the backoff and
crash-loop rule. ``jobcore.cli.worker`` is the command an application registers.
"""

from __future__ import annotations

from jobcore.supervisor.arbiter import RET_CRASH_LOOP, Supervisor, supervise
from jobcore.supervisor.policy import RestartPolicy

__all__ = ["RET_CRASH_LOOP", "RestartPolicy", "Supervisor", "supervise"]
