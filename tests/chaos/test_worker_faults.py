"""Catalogue rows about the worker processes themselves: T1, T2, T8, T26."""

from __future__ import annotations

from devtools.chaos import scenarios
from tests.chaos.conftest import ORDERS


def test_t1_worker_processes_killed_again_and_again_are_replaced_and_nothing_is_lost(harness):
    # Given orders flowing through a supervised group of 2 processes
    # When a worker process is SIGKILLed four times, each time once its replacement is ready
    outcome = scenarios.kill_worker_processes(harness, ORDERS, kills=4)

    # Then each dead process was replaced, and the audit finds nothing lost, stranded or doubled
    assert outcome.evidence["worker_deaths"] == 4, outcome.evidence  # the fault happened
    assert outcome.problems() == []
    assert outcome.drain_s is not None and outcome.drain_s <= 120
