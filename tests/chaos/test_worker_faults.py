"""Catalogue rows about the worker processes: T1 (kill -9), T2 (crash points), T8 (crash
poison), T26 (SIGTERM to the group)."""

from __future__ import annotations

import pytest

from devtools.chaos import scenarios
from devtools.chaos.harness import Outcome
from tests.chaos.conftest import ORDERS
from tests.support.chaos import assert_metrics_within, problems_but_metrics


def _metrics_within_deaths(outcome: Outcome, threads: int) -> None:
    assert_metrics_within(outcome, outcome.evidence["worker_deaths"] * threads)


@pytest.mark.chaos_ci
def test_t1_worker_processes_killed_again_and_again_are_replaced_and_nothing_is_lost(harness):
    # Given orders flowing through a supervised group of 2 processes
    # When a worker process is SIGKILLed three times (each once the last kill's suspects settled)
    outcome = scenarios.kill_worker_processes(harness, ORDERS, kills=3)

    # Then each dead process was replaced, and the audit finds nothing lost, stranded or doubled
    assert outcome.evidence["worker_deaths"] == 3, outcome.evidence  # the fault happened
    assert problems_but_metrics(outcome) == []
    _metrics_within_deaths(outcome, harness.threads)
    assert outcome.drain_s is not None and outcome.drain_s <= 120
    assert outcome.audit.email_duplicates <= 3  # only the documented window (250, then killed)


@pytest.mark.parametrize(
    "point",
    [
        "after_provider_charge",
        "before_ack",
        "after_smtp_250",
        "before_outbox_delete",
        "after_warehouse_call",
    ],
)
def test_t2_a_process_killed_at_each_crash_point_leaves_one_effect_per_order(harness, point):
    # Given workers that SIGKILL themselves twice at the named point
    outcome = scenarios.crash_points(harness, ORDERS // 2, point, budget=2, every=5)

    # Then the kills happened, and every order has one charge, one reservation, one e-mail
    # (a resend only in the window the point opens, with the same Message-ID)
    assert outcome.evidence["kills"] == 2 and outcome.evidence["worker_deaths"] == 2, (
        outcome.evidence
    )
    assert problems_but_metrics(outcome) == []
    # a batch a killed relay had published goes out again: each copy of a job without dedupe
    # runs (and counts in the metrics) once more, while the ledger counts the message once
    assert_metrics_within(
        outcome,
        outcome.evidence["worker_deaths"] * harness.threads + outcome.evidence["republished"],
    )
    assert outcome.audit.email_duplicates <= (2 if point == "after_smtp_250" else 0)


def test_t8_a_message_that_kills_its_worker_is_parked_after_four_deliveries_and_no_bystander(
    harness,
):
    # Given a crash poison among the orders
    outcome = scenarios.crash_poison(harness, ORDERS // 2, poisons=1)

    # Then it ran three times (among others, then alone twice: one lone death could be a kill
    # from outside), killed its process each time, was parked; nothing beside it was parked
    assert outcome.evidence["runs_per_poison"] == [3] and outcome.evidence["worker_deaths"] == 3
    assert outcome.evidence["parked_culprits"] == 1 and outcome.evidence["bystanders_parked"] == 0
    assert problems_but_metrics(outcome) == []
    _metrics_within_deaths(outcome, harness.threads)


def test_t26_sigterm_to_the_group_under_load_again_and_again_loses_nothing_and_exits_0(harness):
    # When the whole group gets SIGTERM three times under load (each time a new group starts)
    outcome = scenarios.sigterm_group(harness, ORDERS, stops=3)

    # Then every stop was clean (exit 0) and the audit finds nothing lost
    assert outcome.evidence["exit_codes"] == [0, 0, 0]
    assert outcome.problems() == [] or all(
        p.startswith("metrics differ") for p in outcome.problems()
    )
    assert outcome.drain_s is not None
