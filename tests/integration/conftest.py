"""Stand-ins for the external parties, started once per run as real processes on 127.0.0.1."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from devtools.stand_ins.process import start_stand_in


@pytest.fixture(scope="session")
def parties(infrastructure: None) -> Iterator[dict[str, object]]:
    started = {name: start_stand_in(name) for name in ("payments", "warehouse", "carrier")}
    os.environ["SHOPJOBS_PAYMENT_URL"] = started["payments"].url
    os.environ["SHOPJOBS_WAREHOUSE_URL"] = started["warehouse"].url
    os.environ["SHOPJOBS_CARRIER_URL"] = started["carrier"].url
    from shop.integrations import providers
    from shop.settings import Settings

    providers.configure(Settings.from_env())
    try:
        yield started
    finally:
        for stand_in in started.values():
            stand_in.stop()


@pytest.fixture()
def stand_ins(parties: dict[str, object], clean: None) -> dict[str, object]:
    """The stand-ins with their state and faults reset for this test."""
    for stand_in in parties.values():
        stand_in.reset()
    return parties
