"""Test-wide set-up: this run's own RabbitMQ vhost and PostgreSQL database.

The names are chosen, and the environment set, before any test module imports ``broker``,
so the test process and every worker it starts talk only to this run's vhost and database.
"""

from __future__ import annotations

import os

RUN_ID = f"{os.getpid()}"
VHOST = f"shopjobs_test_{RUN_ID}"
DATABASE = f"shopjobs_test_{RUN_ID}"
os.environ["SHOPJOBS_AMQP_URL"] = f"amqp://guest:guest@127.0.0.1:5672/{VHOST}"
os.environ["SHOPJOBS_DATABASE_URL"] = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{DATABASE}"
os.environ.setdefault("SHOPJOBS_LOG_LEVEL", "INFO")
os.environ["SHOPJOBS_MIN_BACKOFF_MS"] = "200"
os.environ["SHOPJOBS_MAX_BACKOFF_MS"] = "1000"
os.environ["SHOPJOBS_METRICS_PORT"] = "0"
os.environ["SHOPJOBS_SCHEDULER_METRICS_PORT"] = "0"
# the test process publishes in bursts with idle gaps; a BlockingConnection cannot answer
# heartbeats while idle, so RabbitMQ would drop it between tests
os.environ["SHOPJOBS_AMQP_HEARTBEAT"] = "0"

pytest_plugins = ["tests.support.fixtures", "tests.support.catalog"]
