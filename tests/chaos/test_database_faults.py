"""Catalogue rows about PostgreSQL: T4 (sessions killed, restart, crash) and T6 (partition)."""

from __future__ import annotations

import pytest

from devtools.chaos import netns, network, scenarios
from tests import conftest as run
from tests.chaos.conftest import ORDERS
from tests.support.chaos import assert_metrics_within, problems_but_metrics


@pytest.mark.chaos_ci
def test_t4_killed_sessions_a_restart_and_a_crash_of_postgresql_lose_nothing(harness):
    # When the workers' sessions are terminated, then PostgreSQL restarts (fast), then crashes
    outcome = scenarios.postgres_faults(harness, ORDERS, run.DATABASE)

    # Then the faults happened (sessions were there to kill, the workers saw the errors), no
    # job ran out of retries because of them, and the audit finds nothing lost or doubled
    assert outcome.evidence["sessions_terminated"] > 0, outcome.evidence
    assert outcome.evidence["db_errors_in_worker_log"] > 0
    assert not outcome.evidence["exhausted_by_outage"]
    assert problems_but_metrics(outcome) == []
    # a job whose success could not reach the ledger during the outage runs again
    assert_metrics_within(outcome, 3 * harness.processes * harness.threads)


@pytest.mark.skipif(netns.available() is not None, reason=f"T6 {netns.available()}")
def test_t6_a_partition_from_postgresql_hangs_no_thread_past_the_statement_timeout(harness):
    # When every packet between the workers and PostgreSQL is dropped for 20 s under load
    outcome = network.database_partition(harness, ORDERS, blackhole_s=20)

    # Then a query with the workers' connection settings failed within statement timeout + 5 s
    # while one without them still hung when the partition healed (the fault was real), and
    # after it the audit finds every step all-or-nothing: nothing lost, doubled or stranded
    assert outcome.evidence["control_probe_blocked_whole_partition"], outcome.evidence
    failed = outcome.evidence["probe_failed_after_s"]
    assert failed is not None and failed <= outcome.evidence["bound_s"], outcome.evidence
    assert problems_but_metrics(outcome) == []
    assert_metrics_within(outcome, harness.processes * harness.threads)
