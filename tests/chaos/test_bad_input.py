"""Catalogue rows about bad input beside real orders: T9, T10, T11, T19 (and T20, which every
chaos test checks in its audit: no customer's e-mail or phone in the logs, ledger or dead
letters)."""

from __future__ import annotations

import pytest

from devtools.chaos import bad_input
from tests.chaos.conftest import ORDERS


@pytest.mark.chaos_ci
def test_t9_malformed_bodies_are_dead_lettered_without_a_crash_or_a_consumer_restart(harness):
    outcome = bad_input.malformed_bodies(harness, ORDERS // 2, per_kind=10)

    assert outcome.evidence["dead_letters"] == outcome.evidence["published"], outcome.evidence
    assert outcome.evidence["same_processes"] and outcome.evidence["worker_deaths"] == 0
    assert outcome.evidence["consumer_restarts"] == 0
    assert outcome.problems() == []


@pytest.mark.chaos_ci
def test_t10_an_unknown_actor_and_a_misrouted_message_are_dead_lettered_with_no_effect(harness):
    outcome = bad_input.misrouted(harness, ORDERS // 4)

    assert outcome.evidence["victim_reserved"] == 0, outcome.evidence  # no effect
    assert outcome.evidence["dead_letter_reasons"] == ["unknown_actor", "wrong_queue"], (
        outcome.evidence
    )
    assert outcome.problems() == []


@pytest.mark.chaos_ci
def test_t11_an_oversized_argument_is_refused_by_the_producer_at_once_and_writes_nothing(harness):
    outcome = bad_input.oversized(harness, ORDERS // 4)

    assert outcome.evidence["producer_refused_at_once"], outcome.evidence
    assert outcome.evidence["rows_written_for_it"] == 0
    assert outcome.problems() == []


@pytest.mark.chaos_ci
def test_t19_hostile_arguments_are_refused_as_permanent_with_no_effect(harness):
    outcome = bad_input.hostile_arguments(harness, ORDERS // 4)

    assert outcome.evidence["states"] == {"failed": len(bad_input.HOSTILE)}, outcome.evidence
    assert outcome.evidence["max_attempts"] == 1  # permanent: never retried
    assert outcome.evidence["schema_unchanged"] and outcome.evidence["other_orders_unchanged"]
    assert outcome.problems() == []
