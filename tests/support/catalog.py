"""Fixtures of the catalog jobs' tests: image server, two price sources, a storage directory.

The workers get their settings through ``env`` (``catalog_env``), so nothing here changes the
environment of other tests' workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from devtools.processes import Worker
from devtools.stand_ins.process import StandIn, start_stand_in
from jobcore.db import session_scope
from shop.models import Notification
from shop.storage import Storage, open_storage
from tests.support.ledger import entry
from tests.support.waiting import wait_until


@pytest.fixture(scope="session")
def catalog_parties(infrastructure: None) -> Iterator[dict[str, StandIn]]:
    started = {
        "images": start_stand_in("images"),
        "primary": start_stand_in("prices"),
        "backup": start_stand_in("prices"),
    }
    try:
        yield started
    finally:
        for stand_in in started.values():
            stand_in.stop()


@pytest.fixture(scope="session")
def catalog_storage_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("catalog-storage")


@pytest.fixture(scope="session")
def catalog_env(catalog_parties: dict[str, StandIn], catalog_storage_dir: Path) -> dict[str, str]:
    """The catalog workers' settings (given to them, not put in this process's environment)."""
    return {
        "SHOPJOBS_STORAGE_URL": catalog_storage_dir.as_uri(),
        "SHOPJOBS_PRICE_FEED_SOURCES": f"primary={catalog_parties['primary'].url},backup={catalog_parties['backup'].url}",
        "SHOPJOBS_HTTP_TIMEOUT_S": "1",
        "SHOPJOBS_IMAGE_MAX_BYTES": "1000000",
        "SHOPJOBS_IMAGE_MAX_PIXELS": "20000000",
        "SHOPJOBS_EXPORT_CHUNK_ROWS": "500",
        # the image and price stand-ins (and the parties) are on loopback, refused unless listed
        "SHOPJOBS_OUTBOUND_ALLOWED_HOSTS": "127.0.0.1",
    }


@pytest.fixture()
def catalog(
    catalog_parties: dict[str, StandIn],
    stand_ins: dict[str, Any],
    catalog_env: dict[str, str],
    catalog_storage_dir: Path,
) -> dict[str, Any]:
    """Clean tables and queues, reset stand-ins; return them, the workers' env and their storage."""
    for stand_in in catalog_parties.values():
        stand_in.reset()
    return {
        **catalog_parties,
        **stand_ins,
        "env": catalog_env,
        "storage": open_storage(catalog_storage_dir.as_uri()),
    }


@pytest.fixture(scope="module")
def catalog_worker(parties: dict[str, Any], catalog_env: dict[str, str]) -> Iterator[Worker]:
    """One worker process (4 threads) on every queue with the catalog settings, shared by a module's
    tests (each test still starts from empty tables and queues): starting one costs seconds."""
    worker = Worker(("actors",), processes=1, threads=4, env=catalog_env)
    try:
        yield worker.wait_ready()
    finally:
        worker.stop()


def notifications(template: str) -> list[tuple[str, int | None]]:
    """(entity_key, user_id) of every notification asked with ``template``, in key order."""
    with session_scope() as s:
        return [
            tuple(r)
            for r in s.execute(
                select(Notification.entity_key, Notification.user_id)
                .where(Notification.template == template)
                .order_by(Notification.entity_key)
            ).all()
        ]


def count(model: Any, *where: Any) -> int:
    with session_scope() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where)) or 0


def finished(message_id: str, timeout: float = 60) -> Any:
    """The ledger row of a message once it reached a final state."""
    return wait_until(
        lambda: (
            (e := entry(message_id)) is not None
            and e.state in ("succeeded", "failed", "dead", "skipped")
            and e
        ),
        timeout,
        interval=0.1,
        what=f"message {message_id} finished",
    )


def stored_sha(storage: Storage, key: str) -> str:
    found = storage.stat(key)
    assert found is not None, key
    return found.sha256
