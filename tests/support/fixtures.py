"""Fixtures: this run's vhost and database, clean state per test, real workers."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool

from devtools import devservices
from devtools.processes import Worker
from jobcore import db
from jobcore.models import Base
from shop import db_logins, dbadmin
from tests.support import amqp


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


def _require(service: str) -> None:
    host, port = devservices.address(service)
    if devservices.reachable(host, port):
        return
    message = f"{service} is not reachable on {host}:{port}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: integration tests must run)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def infrastructure() -> Iterator[None]:
    """Create this run's vhost and database (migrated to head); drop both at the end."""
    _require("postgresql")
    _require("rabbitmq")
    from tests import conftest

    devservices.create_vhost(conftest.VHOST)
    try:
        db_logins.create(conftest.LOGINS, recreate=True)
        dbadmin.migrate(conftest.LOGINS.owner)
        yield
    finally:
        import broker

        broker.flush_ledger(5)
        broker.broker.close()
        db.dispose_engine()
        db_logins.drop(conftest.LOGINS)
        devservices.delete_vhost(conftest.VHOST)


@pytest.fixture(scope="session")
def owner_engine(infrastructure: None) -> Iterator[Engine]:
    """The migration owner's engine: what the application role may not do (TRUNCATE, DDL)."""
    from tests import conftest

    engine = create_engine(conftest.LOGINS.owner, poolclass=NullPool)
    yield engine
    engine.dispose()


@pytest.fixture()
def clean(owner_engine: Engine) -> None:
    """Empty tables and queues before a test, so tests do not see each other's work (as the
    owner: the application role may not TRUNCATE payments or the audit log)."""
    tables = ", ".join(t.name for t in reversed(Base.metadata.sorted_tables))
    with owner_engine.begin() as conn:
        # the engine's lock_timeout (5 s) is for jobs: the test's clean-up waits for a worker of
        # the previous test to let go of its tables, as it did before that timeout existed
        conn.execute(text("SET LOCAL lock_timeout = 0"))
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    amqp.purge_all()


@pytest.fixture()
def start_worker(clean: None) -> Iterator[Callable[..., Worker]]:
    """Start real ``dramatiq`` workers; every one is stopped at the end of the test."""
    started: list[Worker] = []

    def start(*modules: str, **kwargs: Any) -> Worker:
        worker = Worker(modules or ("actors",), **kwargs)
        started.append(worker)
        return worker.wait_ready()

    yield start
    for worker in started:
        worker.stop()
