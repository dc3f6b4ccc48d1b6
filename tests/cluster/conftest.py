"""Scale-out tests on a private 3-node RabbitMQ cluster (``devtools.private.cluster``).

The cluster runs beside the machine's RabbitMQ, on ports of its own, so these tests fault only
what they started; they are marked ``cluster`` (run alone with ``-m cluster``). The cluster is
started once per module. ``SHOPJOBS_CLUSTER_ORDERS`` sets the orders per run (default 2,000).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

import broker  # noqa: F401  (builds the process: settings, database, routing table)
from devtools.private.cluster import RabbitCluster
from devtools.private.rabbitmq import available
from tests.chaos.conftest import harness  # noqa: F401  (the chaos harness fixture)
from tests.conftest import VHOST
from tests.integration.conftest import parties, stand_ins  # noqa: F401  (the stand-in fixtures)
from tests.support.notify import notify_parties  # noqa: F401  (SMTP and SMS stand-ins)

ORDERS = int(os.environ.get("SHOPJOBS_CLUSTER_ORDERS", "2000"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/cluster/" in str(item.fspath):
            item.add_marker(pytest.mark.cluster)
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[RabbitCluster, str]]:
    """A fresh 3-node cluster and a vhost on it; stopped (by its pid files) after the module."""
    reason = available()
    if reason:
        pytest.fail(f"the cluster tests need private RabbitMQ nodes: {reason}")
    started = RabbitCluster(prefix=f"shopjobs-t{os.getpid()}").start()
    try:
        started.add_vhost(VHOST)
        yield started, VHOST
    finally:
        started.stop()
