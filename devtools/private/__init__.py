"""Private RabbitMQ and PostgreSQL instances for fault tests, the soak and the main job.

``PrivateServices`` starts one of each in a scratch folder and exports them through the
environment (``env()``): the URLs every process of ours reads (``SHOPJOBS_AMQP_URL``'s host and
port, ``SHOPJOBS_DATABASE_URL``'s), and where the faults act (``SHOPJOBS_RABBITMQ_NODE`` and
``SHOPJOBS_RABBITMQ_HOME`` for the CLI, ``SHOPJOBS_PGDATA`` for pg_ctl). ``devtools.faults`` and
``devtools.devservices`` read those, so a chaos run never touches the machine's 5672 or 5432.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time

from devtools.private.postgres import PostgresInstance
from devtools.private.postgres import available as postgres_available
from devtools.private.rabbitmq import RabbitNode
from devtools.private.rabbitmq import available as rabbitmq_available

__all__ = ["PostgresInstance", "PrivateServices", "RabbitNode", "available"]


def available() -> str | None:
    """Why private instances cannot run here, or None."""
    return rabbitmq_available() or postgres_available()


class PrivateServices:
    """A private RabbitMQ node and PostgreSQL instance, started together, stopped together.

    Parameters:
      base_dir: scratch folder for both (a new temporary one when not given); removed at stop.
      name: the RabbitMQ node's short name (``shopjobs-<pid>`` by default).
    """

    def __init__(self, base_dir: str | None = None, name: str | None = None) -> None:
        self.base_dir = base_dir or tempfile.mkdtemp(prefix="shopjobs-private-")
        self.rabbit = RabbitNode(
            os.path.join(self.base_dir, "rabbitmq"), name or f"shopjobs-{os.getpid()}"
        )
        self.postgres = PostgresInstance(os.path.join(self.base_dir, "postgres"))
        self.boot_s: float | None = None

    def start(self) -> PrivateServices:
        started = time.monotonic()
        try:
            self.postgres.start()
            try:
                self.rabbit.start()
            except RuntimeError as exc:  # exited while booting: a port taken meanwhile, once seen
                print(f"private RabbitMQ node failed to boot, retrying: {exc}", file=sys.stderr)
                self.rabbit.stop()
                self.rabbit = RabbitNode(self.rabbit.base_dir, self.rabbit.node.split("@")[0])
                self.rabbit.start()
        except BaseException:
            self.stop()
            raise
        self.boot_s = time.monotonic() - started
        return self

    def stop(self) -> None:
        try:
            self.rabbit.stop()
        finally:
            self.postgres.destroy()
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def env(self, vhost: str = "%2F", database: str = "postgres") -> dict[str, str]:
        """What to put in ``os.environ`` so our processes and the faults use these instances."""
        return {
            "SHOPJOBS_AMQP_URL": self.rabbit.url(vhost),
            "SHOPJOBS_DATABASE_URL": self.postgres.url(database),
            "SHOPJOBS_RABBITMQ_NODE": self.rabbit.node,
            "SHOPJOBS_RABBITMQ_HOME": self.rabbit.home,
            "SHOPJOBS_PGDATA": self.postgres.data_dir,
        }
