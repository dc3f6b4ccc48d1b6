"""Catalogue rows about many workers on the same data: T7 (poison), T12 (duplicates),
T17 (payment provider faults), T23 (the relay), T25 (oversell)."""

from __future__ import annotations

import pytest

from devtools.chaos import scenarios
from tests.chaos.conftest import ORDERS


@pytest.mark.chaos_ci
def test_t7_a_poison_message_fails_after_exactly_max_retries_plus_one_attempts(harness):
    outcome = scenarios.poison_messages(harness, ORDERS // 2, poisons=3)

    retries = outcome.evidence["max_retries"]
    assert outcome.evidence["attempts"] == [retries + 1] * 3, outcome.evidence
    assert outcome.evidence["dead_letters"] == 3  # in the DLQ and the ledger once each
    assert outcome.problems() == []  # the orders beside them were unaffected


def test_t12_every_message_twice_and_old_ones_again_have_one_effect_each(harness):
    outcome = scenarios.duplicate_delivery(harness, ORDERS)

    # every copy was skipped and counted; nothing was charged, reserved or mailed twice
    assert outcome.evidence["duplicates_skipped"] >= outcome.evidence["republished_old"] > 0
    assert outcome.problems() == []
    assert outcome.audit.email_duplicates == 0


def test_t17_payment_provider_faults_charge_each_paid_order_exactly_once(harness):
    outcome = scenarios.provider_faults(harness, ORDERS)

    assert outcome.evidence["payment_retries"] > 0 and outcome.evidence["connections_reset"] >= 0
    assert outcome.problems() == []


def test_t23_a_relay_killed_repeatedly_and_two_relays_at_once_lose_and_double_nothing(harness):
    outcome = scenarios.relay_faults(harness, ORDERS, kills=2)

    assert outcome.evidence["outbox_rows"] == ORDERS  # every order waited for the relay
    assert outcome.problems() == [] or all(
        p.startswith("metrics differ") for p in outcome.problems()
    )


def test_t25_more_orders_than_stock_reserve_exactly_the_stock_and_refund_the_rest_once(harness):
    outcome = scenarios.oversell(harness, 300, stock=30)

    assert outcome.audit.statuses["completed"] == 30
    assert outcome.audit.statuses["cancelled"] == 270
    assert outcome.problems() == []  # stock 0, never negative; one refund per cancelled charge
