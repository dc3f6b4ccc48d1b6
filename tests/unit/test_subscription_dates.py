"""Renewal dates: weekly steps, and monthly steps that keep their anchor day at month ends."""

from __future__ import annotations

import datetime as dt

import pytest

from shop.subscriptions.dates import add_months, next_delivery

D = dt.date


def test_a_monthly_subscription_from_january_31_renews_on_the_last_day_then_returns_to_the_31st():
    # Given a monthly subscription anchored on the 31st
    dates = [D(2027, 1, 31)]
    # When it renews five times
    for _ in range(5):
        dates.append(next_delivery(dates[-1], "monthly", anchor_day=31))
    # Then short months get their last day and long months the 31st again
    assert dates == [
        D(2027, 1, 31),
        D(2027, 2, 28),
        D(2027, 3, 31),
        D(2027, 4, 30),
        D(2027, 5, 31),
        D(2027, 6, 30),
    ]


def test_a_leap_year_february_gets_the_29th():
    assert next_delivery(D(2028, 1, 31), "monthly", anchor_day=31) == D(2028, 2, 29)
    assert next_delivery(D(2028, 2, 29), "monthly", anchor_day=30) == D(2028, 3, 30)


def test_december_rolls_into_the_next_year():
    assert next_delivery(D(2026, 12, 31), "monthly", anchor_day=31) == D(2027, 1, 31)
    assert add_months(D(2026, 11, 30), 3, anchor_day=31) == D(2027, 2, 28)


def test_without_an_anchor_the_date_keeps_its_own_day():
    assert next_delivery(D(2026, 3, 15), "monthly") == D(2026, 4, 15)


def test_weekly_and_biweekly_steps_cross_month_and_year_ends():
    assert next_delivery(D(2026, 12, 29), "weekly") == D(2027, 1, 5)
    assert next_delivery(D(2027, 2, 22), "biweekly") == D(2027, 3, 8)


def test_an_unknown_frequency_is_refused_with_the_known_ones_named():
    with pytest.raises(ValueError, match="weekly"):
        next_delivery(D(2026, 1, 1), "daily")
