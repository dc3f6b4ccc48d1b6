"""The fault catalogue at CI size: real supervised workers, stand-ins, RabbitMQ and PostgreSQL.

Every test here is marked ``chaos``: they stop, crash and alarm RabbitMQ and PostgreSQL, so a
run that includes them runs on a private RabbitMQ node and PostgreSQL instance of its own
(``tests/support/private_services.py``), never on the machine's services, and can run beside
any other test run. Run them with ``-m chaos``, leave them out with ``-m "not chaos"``.
``SHOPJOBS_CHAOS_ORDERS`` sets the orders per row (default 200).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

import broker  # noqa: F401  (builds the process: settings, database, routing table)
from devtools.chaos.harness import Harness
from tests.integration.conftest import parties, stand_ins  # noqa: F401  (the stand-in fixtures)
from tests.support import amqp
from tests.support.notify import notify_parties  # noqa: F401  (SMTP and SMS stand-ins)

ORDERS = int(os.environ.get("SHOPJOBS_CHAOS_ORDERS", "200"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        # the catalogue's coverage check faults nothing: it runs with the rest of the suite
        if "/chaos/" in str(item.fspath) and "test_not_here" not in str(item.fspath):
            item.add_marker(pytest.mark.chaos)
            item.add_marker(pytest.mark.integration)


@pytest.fixture()
def harness(
    stand_ins: dict[str, object],  # noqa: F811  (a pytest fixture, by name)
    notify_parties: tuple,  # noqa: F811  (a pytest fixture, by name)
    tmp_path: object,
) -> Iterator[Harness]:
    """A clean shop (tables, queues, stand-in state) and the harness over it."""
    amqp.purge_all(("tests", "chaos"))
    for party in notify_parties:
        party.reset()
    harness = Harness(stand_ins["payments"], str(tmp_path), smtp=notify_parties[0])
    try:
        yield harness
    finally:
        harness.close()
