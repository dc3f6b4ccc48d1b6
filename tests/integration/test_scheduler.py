"""The scheduler against the real broker and database: one message per logical fire.

Messages are counted where they really are, in RabbitMQ's ``tests`` queue (nothing consumes it
here); each fire's message id is derived from (schedule, fire time), so a duplicate would show
up as the same id twice.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import time_machine
from dramatiq import Message
from sqlalchemy import select, text

from jobcore.db import get_engine, session_scope
from programs.cli import main as cli
from shop.models import ScheduleFire, SchedulerLeader, ScheduleState
from shop.scheduling import triggers
from shop.scheduling.entries import Entry, message_id
from shop.scheduling.firing import fire_pending
from shop.scheduling.leader import current_leader
from shop.scheduling.process import SchedulerProcess, start_scheduler
from tests.support import amqp, scheduled_actors
from tests.support.scheduled_actors import EVEN_SECONDS, EVERY_SECOND
from tests.support.waiting import wait_until

UTC = dt.UTC
ENV = {"SHOPJOBS_SCHEDULE_MODULE": scheduled_actors.MODULE}
TICK_S = 1.0


@pytest.fixture()
def schedulers(clean: None, tmp_path: Path) -> Iterator[Callable[..., SchedulerProcess]]:
    """Start scheduler processes with the test schedule; each is stopped by its PID at the end."""
    amqp.declare(scheduled_actors.QUEUE)
    started: list[SchedulerProcess] = []

    def start(tick_s: float = TICK_S) -> SchedulerProcess:
        log_path = str(tmp_path / f"scheduler-{len(started)}.log")
        process = start_scheduler(ENV, log_path=log_path, tick_s=tick_s)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def _fires(schedule: str, reason: str | None = None) -> list[ScheduleFire]:
    with session_scope() as s:
        query = (
            select(ScheduleFire)
            .where(ScheduleFire.schedule == schedule)
            .order_by(ScheduleFire.fire_time)
        )
        if reason is not None:
            query = query.where(ScheduleFire.reason == reason)
        return list(s.scalars(query))


def _state(schedule: str) -> ScheduleState:
    with session_scope() as s:
        return s.get_one(ScheduleState, schedule)


def _leader_pid() -> int | None:
    with get_engine().connect() as conn:
        holder = current_leader(conn)
    return holder["pid"] if holder and holder["holds_lock"] else None


def _drain(queue: str = scheduled_actors.QUEUE) -> list[Message]:
    messages = []
    with amqp.channel() as ch:
        while True:
            method, _, body = ch.basic_get(queue, auto_ack=True)
            if method is None:
                return messages
            messages.append(Message.decode(body))


def _published_exactly_once(killed_at: dt.datetime | None = None) -> Counter[str]:
    """Every fire row's message is in the queue once, and nothing else is (waits for stragglers).

    With ``killed_at``, a fire published by the killed leader just before its SIGKILL may be in
    the queue twice: the outbox is at least once (published, confirmed, then killed before the
    DELETE commits, so the next leader's relay publishes it again with the same message id, and
    the worker's ledger skips the copy). Only fires of the last ticks before the kill may.
    """
    with session_scope() as s:
        fires = {f.message_id: f.fire_time for f in s.scalars(select(ScheduleFire))}
    wait_until(
        lambda: amqp.depth(scheduled_actors.QUEUE) >= len(fires),
        timeout=15,
        what="every fire published",
    )
    seen = Counter(m.message_id for m in _drain())
    twice = {mid: fires.get(mid) for mid, n in seen.items() if n > 1}
    if killed_at is None:
        assert twice == {}, "a fire was published twice"
    else:
        window = (killed_at - dt.timedelta(seconds=2 * TICK_S + 1), killed_at)
        assert all(t is not None and window[0] <= t <= window[1] for t in twice.values()), (
            f"a fire was published twice away from the kill at {killed_at}: {twice}"
        )
        assert all(seen[mid] == 2 for mid in twice)
    assert set(seen) == set(fires)
    return seen


def _cli(*argv: str) -> int:
    return cli(list(argv))


def test_two_schedulers_send_one_message_per_fire_when_the_leader_is_killed(schedulers):
    # Given two schedulers with a 1-second interval entry and an every-2-seconds cron entry
    first, second = schedulers(), schedulers()
    leader_pid = wait_until(_leader_pid, timeout=10, what="a leader")
    leader, follower = (first, second) if leader_pid == first.pid else (second, first)
    assert leader_pid == leader.pid
    wait_until(lambda: len(_fires(EVERY_SECOND)) >= 4, timeout=15, what="fires before the kill")

    # When the leader is killed with SIGKILL
    leader.kill_hard()
    killed_at, killed_wall = time.monotonic(), dt.datetime.now(UTC)

    # Then the other takes over within two ticks and goes on firing
    wait_until(
        lambda: _leader_pid() == follower.pid, timeout=10, interval=0.02, what="the takeover"
    )
    takeover_s = time.monotonic() - killed_at
    taken_over_wall = dt.datetime.now(UTC)
    assert takeover_s <= 2 * TICK_S + 0.5, f"takeover took {takeover_s:.2f}s"
    wait_until(
        lambda: (
            sum(f.fire_time > taken_over_wall for f in _fires(EVERY_SECOND)) >= 3
            and sum(f.fire_time > taken_over_wall for f in _fires(EVEN_SECONDS)) >= 2
        ),
        timeout=15,
        what="fires after the takeover",
    )
    follower.stop()
    with session_scope() as s:  # a clean stop gives the lock up and clears the leader row
        assert _leader_pid() is None and s.get(SchedulerLeader, 1) is None

    # And every logical fire between the first and the last has exactly one message, except
    # those the misfire policy gave up during the takeover gap, which are counted as misfires
    seen = _published_exactly_once(killed_at=killed_wall)
    for name, spec in ((EVERY_SECOND, {"every_s": 1}), (EVEN_SECONDS, {"cron": "*/2 * * * * *"})):
        rows = _fires(name)
        assert all(
            r.message_id == message_id(name, r.fire_time) and seen[r.message_id] >= 1 for r in rows
        )
        logical = triggers.fires_between(
            triggers.build_trigger(spec, "Europe/Berlin"),
            rows[0].fire_time - dt.timedelta(milliseconds=1),
            rows[-1].fire_time,
            10_000,
        )
        missing = sorted(set(logical) - {r.fire_time for r in rows})
        assert len(missing) <= _state(name).misfires, (
            f"{name}: fires lost without a misfire: {missing}"
        )
        gap = (killed_wall - dt.timedelta(seconds=1), taken_over_wall + dt.timedelta(seconds=1))
        assert all(gap[0] <= t <= gap[1] for t in missing), (
            f"{name}: missed outside the takeover: {missing}"
        )
        assert len(missing) <= 3
    assert "lost the leadership" not in follower.log()


def test_a_leader_whose_database_connection_breaks_stops_firing_and_one_takes_over(schedulers):
    # Given two schedulers, one of them leading
    first, second = schedulers(), schedulers()
    leader_pid = wait_until(_leader_pid, timeout=10, what="a leader")
    leader = first if leader_pid == first.pid else second

    # When PostgreSQL ends the leader's lock connection (a network cut, a failover)
    with get_engine().begin() as conn:
        conn.execute(text("SELECT pg_terminate_backend(backend_pid) FROM scheduler_leader"))
    broken_at = dt.datetime.now(UTC)

    # Then it stops firing as leader, and one scheduler (either) leads and fires again
    wait_until(
        lambda: "lost the leadership" in leader.log(), timeout=10, what="the leader noticing"
    )
    wait_until(_leader_pid, timeout=10, what="a new leader")
    wait_until(
        lambda: sum(f.fire_time > broken_at for f in _fires(EVERY_SECOND)) >= 3,
        timeout=15,
        what="fires after the break",
    )
    first.stop()
    second.stop()
    _published_exactly_once()


def test_operators_pause_resume_trigger_and_override_a_running_scheduler(
    schedulers, monkeypatch, capsys
):
    monkeypatch.setenv("SHOPJOBS_SCHEDULE_MODULE", scheduled_actors.MODULE)
    process = schedulers(tick_s=0.5)
    wait_until(lambda: len(_fires(EVERY_SECOND)) >= 2, timeout=15, what="first fires")

    # pause: no fire after the command returns, while the other entry keeps firing
    assert _cli("schedules", "pause", EVERY_SECOND) == 0
    paused_count = len(_fires(EVERY_SECOND))
    even_count = len(_fires(EVEN_SECONDS))
    wait_until(
        lambda: len(_fires(EVEN_SECONDS)) >= even_count + 2,
        timeout=10,
        what="the other entry firing",
    )
    assert len(_fires(EVERY_SECOND)) == paused_count

    # trigger: one message now, even while paused, through the same dedupe path
    assert _cli("schedules", "trigger", EVERY_SECOND) == 0
    manual = _fires(EVERY_SECOND, reason="manual")
    assert len(manual) == 1 and manual[0].fire_time.microsecond == 0

    # resume: fires again, from now on (the paused time is no backlog of misfires)
    assert _cli("schedules", "resume", EVERY_SECOND) == 0
    wait_until(
        lambda: len(_fires(EVERY_SECOND, reason="on_time")) > paused_count,
        timeout=10,
        what="fires after resume",
    )
    assert _state(EVERY_SECOND).misfires == 0

    # set --every: the running scheduler follows the stored override without a restart
    assert _cli("schedules", "set", EVEN_SECONDS, "--every", "1") == 0
    wait_until(
        lambda: any(f.fire_time.second % 2 for f in _fires(EVEN_SECONDS)),
        timeout=10,
        what="an odd-second fire",
    )
    assert _cli("schedules", "set", EVEN_SECONDS, "--clear") == 0

    # list --json: next and last fire, the last fire's ledger state, the leader
    capsys.readouterr()
    assert _cli("schedules", "list", "--json") == 0
    listing = json.loads(capsys.readouterr().out)
    rows = {row["name"]: row for row in listing["schedules"]}
    assert (
        rows[EVERY_SECOND]["last_outcome"] == "enqueued" and rows[EVERY_SECOND]["paused"] is False
    )
    assert rows[EVEN_SECONDS]["trigger"] == "cron */2 * * * * *" and rows[EVEN_SECONDS]["next_fire"]
    assert listing["leader"]["pid"] == process.pid and listing["leader"]["holds_lock"] is True

    # unknown names and bad triggers are refused
    assert _cli("schedules", "pause", "no-such-schedule") == 1
    assert _cli("schedules", "set", EVEN_SECONDS, "--cron", "61 * * * *") == 2
    assert "no schedule named 'no-such-schedule'" in capsys.readouterr().err

    process.stop()
    _published_exactly_once()


def test_a_clock_jump_of_an_hour_coalesces_or_skips_as_each_entry_says(clean):
    # Given three entries every 20 minutes, with different misfire policies, first seen at 12:05
    amqp.declare(scheduled_actors.QUEUE)
    every_20_min = {"actor": "tests.tick", "cron": "*/20 * * * *", "tz": "Europe/Berlin"}
    entries = [
        Entry(
            name="tm.catch-up",
            args=("tm.catch-up",),
            misfire="catch_up",
            grace_s=3600,
            **every_20_min,
        ),
        Entry(
            name="tm.short-grace",
            args=("tm.short-grace",),
            misfire="catch_up",
            grace_s=60,
            **every_20_min,
        ),
        Entry(name="tm.skip", args=("tm.skip",), misfire="skip", **every_20_min),
    ]
    start = dt.datetime(2026, 7, 1, 12, 5, tzinfo=UTC)
    with time_machine.travel(start, tick=False) as traveller:
        fire_pending(entries, on_time_s=2 * TICK_S)

        # When the clock jumps forward by an hour (12:20, 12:40 and 13:00 were never handled)
        traveller.shift(dt.timedelta(hours=1))
        fire_pending(entries, on_time_s=2 * TICK_S)
        fire_pending(entries, on_time_s=2 * TICK_S)  # the same moment again sends nothing more

        # Then catch_up sends one message for the newest missed fire (13:00, 5 min late);
        # a 60 s grace is too short for it, and skip sends none; all count their misfires
        thirteen = dt.datetime(2026, 7, 1, 13, 0, tzinfo=UTC)
        assert [(f.fire_time, f.reason) for f in _fires("tm.catch-up")] == [(thirteen, "catch_up")]
        assert _fires("tm.short-grace") == [] and _fires("tm.skip") == []
        assert [_state(e.name).misfires for e in entries] == [2, 3, 3]
        assert all(_state(e.name).checked_until == thirteen for e in entries)

        # And the next fire after the jump is on time for every entry
        traveller.move_to(dt.datetime(2026, 7, 1, 13, 20, 0, 400000, tzinfo=UTC))
        fire_pending(entries, on_time_s=2 * TICK_S)

    twenty_past = dt.datetime(2026, 7, 1, 13, 20, tzinfo=UTC)
    seen = _published_exactly_once()
    assert set(seen) == {message_id("tm.catch-up", thirteen)} | {
        message_id(e.name, twenty_past) for e in entries
    }


def test_a_second_leader_with_stale_progress_sends_no_fire_twice(clean):
    # Given an entry that fired at 12:00:01 and 12:00:02
    amqp.declare(scheduled_actors.QUEUE)
    entry = Entry(name="dup.every-second", actor="tests.tick", every_s=1, args=("dup",))
    with time_machine.travel(
        dt.datetime(2026, 7, 1, 12, 0, 0, 500000, tzinfo=UTC), tick=False
    ) as t:
        fire_pending([entry], on_time_s=2 * TICK_S)
        for now in (
            dt.datetime(2026, 7, 1, 12, 0, 1, 100000),
            dt.datetime(2026, 7, 1, 12, 0, 2, 100000),
        ):
            t.move_to(now.replace(tzinfo=UTC))
            fire_pending([entry], on_time_s=2 * TICK_S)
        assert len(_fires(entry.name)) == 2

        # When another leader, or a restart at the fire time, works from older progress
        with session_scope() as s:
            s.get_one(ScheduleState, entry.name).checked_until = dt.datetime(
                2026, 7, 1, 12, 0, 0, tzinfo=UTC
            )
        fire_pending([entry], on_time_s=2 * TICK_S)

    # Then the unique fire rows refuse both fires again: still one message each
    assert [f.reason for f in _fires(entry.name)] == ["on_time", "on_time"]
    assert len(_published_exactly_once()) == 2
    assert _state(entry.name).checked_until == dt.datetime(2026, 7, 1, 12, 0, 2, tzinfo=UTC)


def test_the_schedulers_relay_publishes_what_is_in_the_outbox_with_no_worker_running(
    schedulers,
):
    # Given no worker and three committed sends nobody published: a job's send due now (as a
    # job's outcome leaves it), a delay held in PostgreSQL due in 3 s, and a service's send
    # whose after-commit publish died with its process
    import broker as shop_broker
    from jobcore import outbox, sends
    from tests.support.faulty_actors import touch
    from tests.support.ledger import entry

    def held(path: str, delay_ms: int | None) -> sends.Send:
        return sends.make_send(shop_broker.broker, touch.message(path), delay_ms, 2000)

    due_now, later = held("/nonexistent/now", None), held("/nonexistent/later", 3000)
    sends.store_sends([due_now, later])
    with session_scope() as s:
        straggler = outbox.enqueue(s, touch, "/nonexistent/straggler")
        s.info.pop("shopjobs.outbox")
    ids = {due_now.message_id, later.message_id, straggler}
    assert entry(later.message_id).state == "scheduled"
    assert amqp.depth(scheduled_actors.QUEUE) == 0

    # When a scheduler starts (its relay takes stragglers after 1 s)
    process = start_scheduler(
        {**ENV, "SHOPJOBS_OUTBOX_RELAY_AFTER_S": "1"}, log_path=None, tick_s=TICK_S
    )
    try:
        # Then its relay, the only one running, publishes all three, the held one when due
        def outbox_empty() -> bool:
            with session_scope() as s:
                return not s.execute(text("SELECT count(*) FROM outbox")).scalar()

        wait_until(outbox_empty, timeout=30, what="the scheduler's relay emptied the outbox")
        with session_scope() as s:
            relays = s.scalars(
                text(
                    "SELECT application_name FROM pg_stat_activity"
                    " WHERE application_name LIKE 'shopjobs-relay[%'"
                    " AND datname = current_database()"
                )
            ).all()
        assert relays == [f"shopjobs-relay[{process.pid}]"]
    finally:
        process.stop()
    published = Counter(m.message_id for m in _drain() if m.message_id in ids)
    assert published == Counter({mid: 1 for mid in ids})
    row = entry(later.message_id)
    assert row.state == "enqueued" and row.state_changed_at >= row.eta
