"""Test-wide set-up: this run's own RabbitMQ vhost and PostgreSQL database.

The names (and the logins of each database role) are chosen, and the environment set, before
any test module imports ``broker``, so the test process and every worker it starts talk only to
this run's vhost and database: on the machine's services, or on private instances when the run
includes the chaos suite (``tests/support/private_services.py``).
"""

from __future__ import annotations

import os
import secrets

from shop.db_logins import logins_for

RUN_ID = f"{os.getpid()}"
VHOST = f"shopjobs_test_{RUN_ID}"
DATABASE = f"shopjobs_test_{RUN_ID}"
# the machine's services, or the private ones tests/support/private_services.py started
AMQP_ADDRESS = os.environ.get("SHOPJOBS_TEST_AMQP_ADDRESS", "127.0.0.1:5672")
DATABASE_ADDRESS = os.environ.get("SHOPJOBS_TEST_DATABASE_ADDRESS", "127.0.0.1:5432")
os.environ["SHOPJOBS_AMQP_URL"] = f"amqp://guest:guest@{AMQP_ADDRESS}/{VHOST}"
# every process of the run works under the login of its role (shop.db_logins): the superuser
# only creates and drops the database and the logins, the owner migrates (and empties tables
# between tests), the test process and its workers are the application role, backups the backup
# role; a grant a job lacks fails here rather than first in production
ADMIN_DATABASE_URL = f"postgresql+psycopg2://postgres@{DATABASE_ADDRESS}/{DATABASE}"
LOGINS = logins_for(ADMIN_DATABASE_URL, DATABASE, f"Test-{secrets.token_hex(8)}")
os.environ["SHOPJOBS_DATABASE_URL"] = LOGINS.app
os.environ["SHOPJOBS_BACKUP_DATABASE_URL"] = LOGINS.backup
# every stand-in of the tests (parties, SMS, prices, images, chaos proxies) listens on loopback,
# which the outbound guard refuses unless listed: listed explicitly, as a deployment lists a
# private endpoint (the guard's own tests build their policies and list single ports)
os.environ["SHOPJOBS_OUTBOUND_ALLOWED_HOSTS"] = "127.0.0.1"
os.environ.setdefault("SHOPJOBS_LOG_LEVEL", "INFO")
os.environ["SHOPJOBS_MIN_BACKOFF_MS"] = "200"
os.environ["SHOPJOBS_MAX_BACKOFF_MS"] = "1000"
os.environ["SHOPJOBS_METRICS_PORT"] = "0"
os.environ["SHOPJOBS_SCHEDULER_METRICS_PORT"] = "0"
# the test process publishes in bursts with idle gaps; a BlockingConnection cannot answer
# heartbeats while idle, so RabbitMQ would drop it between tests
os.environ["SHOPJOBS_AMQP_HEARTBEAT"] = "0"

pytest_plugins = ["tests.support.fixtures", "tests.support.catalog"]
