"""The schedule as data: entries name real actors, fire times are DST-safe, message ids are stable."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from zoneinfo import ZoneInfo

import dramatiq
import pytest
from apscheduler.triggers.cron import CronTrigger

from shop.scheduling import triggers
from shop.scheduling.entries import Entry, load, message_id
from shop.scheduling.schedule import ENTRIES

UTC = dt.UTC
BERLIN = ZoneInfo("Europe/Berlin")


def _fires(spec, after, count, tz="Europe/Berlin"):
    trigger = triggers.build_trigger(spec, tz)
    return triggers.fires_between(trigger, after, after + dt.timedelta(days=400), count)


def test_every_production_entry_names_a_declared_actor():
    import actors  # noqa: F401  (declares every actor on the project's broker)

    broker = dramatiq.get_broker()
    for entry in ENTRIES:
        assert broker.get_actor(entry.actor).actor_name == entry.actor, entry.name


def test_the_production_schedule_loads_with_unique_names_and_a_zone_per_entry():
    entries = load()
    names = [e.name for e in entries]
    assert names[:2] == ["relay-outbox", "prune-job-ledger"] and len(set(names)) == len(names)
    assert {"subscriptions-renewal", "backup-daily", "backup-weekly", "health-check"} <= set(names)
    assert all(ZoneInfo(e.tz) for e in entries)
    by_name = {e.name: e for e in entries}
    assert by_name["relay-outbox"].every_s == 30
    assert (
        by_name["prune-job-ledger"].cron == "0 4 * * *"
        and by_name["prune-job-ledger"].tz == "Europe/Berlin"
    )


def test_a_daily_cron_keeps_its_wall_clock_time_across_both_dst_changes():
    # Given 04:00 Europe/Berlin, When the clocks change in spring and autumn 2026
    spring = _fires({"cron": "0 4 * * *"}, dt.datetime(2026, 3, 27, 12, tzinfo=UTC), 3)
    autumn = _fires({"cron": "0 4 * * *"}, dt.datetime(2026, 10, 23, 12, tzinfo=UTC), 3)

    # Then it fires at 04:00 local every day, whose UTC time moves by the hour
    assert [f.astimezone(BERLIN).hour for f in spring + autumn] == [4] * 6
    assert [f.hour for f in spring] == [3, 2, 2]
    assert [f.hour for f in autumn] == [2, 3, 3]


def test_a_time_repeated_by_the_autumn_change_fires_once_at_its_first_occurrence():
    # 2026-10-25: 03:00 CEST becomes 02:00 CET, so 02:30 happens at 00:30Z and again at 01:30Z
    fires = _fires({"cron": "30 2 * * *"}, dt.datetime(2026, 10, 24, 12, tzinfo=UTC), 2)
    assert fires == [
        dt.datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
        dt.datetime(2026, 10, 26, 1, 30, tzinfo=UTC),
    ]


def test_a_time_skipped_by_the_spring_change_fires_once_right_after_the_gap():
    # 2026-03-29: 02:00 CET becomes 03:00 CEST; 02:30 does not exist and fires at 03:30 CEST
    fires = _fires({"cron": "30 2 * * *"}, dt.datetime(2026, 3, 28, 12, tzinfo=UTC), 2)
    assert fires == [
        dt.datetime(2026, 3, 29, 1, 30, tzinfo=UTC),
        dt.datetime(2026, 3, 30, 0, 30, tzinfo=UTC),
    ]


@pytest.mark.parametrize("expr", ["*/30 * * * *", "*/2 * * * * *", "0 * * * *", "15,45 2 * * *"])
def test_fire_times_strictly_increase_through_the_repeated_hour(expr):
    # APScheduler 3.11's own CronTrigger(timezone=...) goes backwards here (agronholm/apscheduler#1021)
    fires = _fires({"cron": expr}, dt.datetime(2026, 10, 24, 22, tzinfo=UTC), 4000)
    fires = [f for f in fires if f < dt.datetime(2026, 10, 25, 4, tzinfo=UTC)]
    assert fires and all(a < b for a, b in itertools.pairwise(fires))
    assert len({f.astimezone(BERLIN).replace(tzinfo=None) for f in fires}) == len(fires)


def test_apscheduler_alone_would_repeat_fires_in_the_autumn_hour():
    # Why WallClockCron exists: the library's trigger does not move forward through the fold
    plain = CronTrigger(minute="*/30", timezone=BERLIN)
    t = dt.datetime(2026, 10, 25, 0, 0, tzinfo=UTC)
    seen = []
    for _ in range(4):
        t = plain.get_next_fire_time(None, t + dt.timedelta(microseconds=1))
        seen.append(t.astimezone(UTC))
    assert any(b <= a for a, b in itertools.pairwise(seen))


def test_an_interval_counts_absolute_time_across_a_dst_change():
    fires = _fires({"every_s": 30}, dt.datetime(2026, 10, 25, 0, 58, 10, tzinfo=UTC), 10)
    assert {(b - a).total_seconds() for a, b in itertools.pairwise(fires)} == {30.0}
    assert all(f.second in (0, 30) for f in fires)


def test_every_process_computes_the_same_interval_fire_times():
    # Given two triggers built at different moments (two scheduler processes)
    first = triggers.build_trigger({"every_s": 7}, "UTC")
    second = triggers.build_trigger({"every_s": 7}, "Europe/Berlin")
    after = dt.datetime(2026, 5, 1, 12, 0, 3, 250000, tzinfo=UTC)

    # Then they agree on the fire times, which are anchored at 2000-01-01 UTC
    assert triggers.next_after(first, after) == triggers.next_after(second, after)
    assert (triggers.next_after(first, after) - triggers.EPOCH).total_seconds() % 7 == 0


def test_a_fire_time_is_strictly_after_the_previous_one():
    trigger = triggers.build_trigger({"cron": "0 4 * * *"}, "Europe/Berlin")
    fire = dt.datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
    assert triggers.next_after(trigger, fire) == dt.datetime(2026, 6, 2, 2, 0, tzinfo=UTC)


def test_the_message_id_is_derived_from_name_and_fire_time_and_is_stable():
    fire = dt.datetime(2026, 3, 29, 2, 0, tzinfo=UTC)
    same_instant_in_berlin = fire.astimezone(BERLIN)
    assert message_id("prune-job-ledger", fire) == message_id(
        "prune-job-ledger", same_instant_in_berlin
    )
    # fixed forever: a change here would let a fire be sent twice across a deploy
    derived = uuid.uuid5(
        uuid.uuid5(uuid.NAMESPACE_DNS, "scheduler.shopjobs"),
        "prune-job-ledger@2026-03-29T02:00:00+00:00",
    )
    assert (
        message_id("prune-job-ledger", fire)
        == str(derived)
        == "d9f9442c-12ad-5aff-8d37-dd57581083de"
    )
    assert message_id("prune-job-ledger", fire + dt.timedelta(days=1)) != message_id(
        "prune-job-ledger", fire
    )
    assert message_id("relay-outbox", fire) != message_id("prune-job-ledger", fire)
    with pytest.raises(ValueError, match="timezone-aware"):
        message_id("relay-outbox", fire.replace(tzinfo=None))


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"cron": "0 4 * * *", "every_s": 30}, "exactly one"),
        ({}, "exactly one"),
        ({"cron": "0 4 * * 1"}, "name the days"),
        ({"cron": "0 4 * *"}, "expected 5 fields"),
        ({"every_s": 0}, "between"),
        ({"every_s": float("inf")}, "between"),
        ({"every_s": 30, "tz": "Mars/Olympus"}, "Mars/Olympus"),
        ({"every_s": 30, "misfire": "run_all"}, "misfire"),
        ({"every_s": 30, "grace_s": -1}, "grace_s"),
    ],
)
def test_a_bad_entry_fails_when_the_schedule_is_declared(kwargs, error):
    with pytest.raises(ValueError, match=error):
        Entry(name="bad", actor="maintenance.relay_outbox", **kwargs)


def test_day_names_work_in_the_day_of_week_field():
    fires = _fires(
        {"cron": "0 9 * * mon-fri"}, dt.datetime(2026, 6, 5, 12, tzinfo=UTC), 3
    )  # a Friday
    assert [f.astimezone(BERLIN).strftime("%a %H:%M") for f in fires] == [
        "Mon 09:00",
        "Tue 09:00",
        "Wed 09:00",
    ]
