"""Unique jobs: one job per key while it is enqueued, scheduled or running, by a unique index."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import text

from jobcore import outbox
from jobcore.db import session_scope
from jobcore.errors import InvalidSend
from jobcore.unique import DuplicateJob
from tests.support.faulty_actors import touch
from tests.support.ledger import state
from tests.support.unique_actors import export_once as export
from tests.support.unique_actors import send_unique_twice
from tests.support.unique_actors import touch_after_gate as gated
from tests.support.waiting import wait_until

ACTORS = ("actors", "tests.support.faulty_actors", "tests.support.unique_actors")


def _ledger_rows(actor: str) -> list[tuple[str, str, str]]:
    with session_scope() as s:
        return [
            tuple(row)
            for row in s.execute(
                text("SELECT message_id, state, args->>'path' FROM job_ledger WHERE actor = :a"),
                {"a": actor},
            ).all()
        ]


def _counts() -> tuple[int, int, int]:
    with session_scope() as s:
        return tuple(  # type: ignore[return-value]
            s.execute(
                text(
                    "SELECT (SELECT count(*) FROM job_ledger), (SELECT count(*) FROM outbox),"
                    " (SELECT count(*) FROM job_unique_keys)"
                )
            ).one()
        )


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_a_thousand_concurrent_sends_of_ten_keys_leave_exactly_ten_jobs(start_worker, tmp_path):
    # Given running workers whose jobs run until a gate opens, and 1,000 sends of 10 keys from
    # 20 threads at once: half through the outbox in their own transactions, half as plain
    # sends with the options
    start_worker(*ACTORS, processes=2, threads=8)
    paths = [tmp_path / f"key-{k}" for k in range(10)]
    gate = str(tmp_path / "gate")
    returned: list[tuple[int, str]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(20)

    def sender(thread: int) -> None:
        barrier.wait()
        for i in range(50):
            k = (thread + i) % 10
            key = f"report:{k}"
            if i % 2:
                with session_scope() as s:
                    mid = outbox.enqueue(s, gated, str(paths[k]), gate, unique_key=key)
            else:
                mid = gated.send_with_options(args=(str(paths[k]), gate), unique_key=key).message_id
            with lock:
                returned.append((k, mid))

    with ThreadPoolExecutor(20) as pool:
        list(pool.map(sender, range(20)))  # re-raises a sender's error
    assert len(returned) == 1000

    # Then exactly 10 jobs exist, one per key, and every send of a key got that job's id
    rows = _ledger_rows("tests.touch_after_gate")
    assert len(rows) == 10
    by_path = {path: mid for mid, _, path in rows}
    assert len(by_path) == 10
    for k, mid in returned:
        assert mid == by_path[str(paths[k])]
    # and each runs exactly once when the gate opens
    Path(gate).touch()
    wait_until(lambda: all(state(mid) == "succeeded" for mid, _, _ in rows), timeout=60)
    assert [_lines(p) for p in paths] == [1] * 10

    # When a key's job has finished, the key is free: a new send makes a new job
    again = gated.send_with_options(args=(str(paths[0]), gate), unique_key="report:0").message_id
    assert again != by_path[str(paths[0])]
    wait_until(lambda: state(again) == "succeeded", timeout=30)
    assert _lines(paths[0]) == 2


def test_a_duplicate_is_refused_when_asked_and_a_key_frees_when_its_window_passes(
    start_worker, tmp_path
):
    # Given no worker consumes yet: a job holds the key while it is enqueued
    path = str(tmp_path / "held")
    with session_scope() as s:
        first = outbox.enqueue(s, touch, path, unique_key="export:7", unique_for=1500)

    # When the same key is sent with on_duplicate="refuse"
    # Then DuplicateJob names the holder, and the refused send wrote nothing
    before = _counts()
    with pytest.raises(DuplicateJob) as refused, session_scope() as s:
        outbox.enqueue(s, touch, path, unique_key="export:7", on_duplicate="refuse")
    assert refused.value.message_id == first
    with pytest.raises(DuplicateJob):
        touch.send_with_options(args=(path,), unique_key="export:7", on_duplicate="refuse")
    assert _counts() == before

    # When its 1.5 s window has passed (the job still waits), the key can be claimed again
    def claimed_again() -> str | None:
        mid = touch.send_with_options(args=(path,), unique_key="export:7").message_id
        return mid if mid != first else None

    second = wait_until(claimed_again, timeout=10, interval=0.2)
    with session_scope() as s:
        holder = s.execute(
            text("SELECT message_id FROM job_unique_keys WHERE key = 'export:7'")
        ).scalar_one()
    assert holder == second

    # Then both jobs run once the workers start
    start_worker(*ACTORS)
    wait_until(lambda: state(first) == state(second) == "succeeded", timeout=30)
    assert _lines(tmp_path / "held") == 2


def test_a_job_sending_one_key_twice_commits_one_send_and_a_key_held_elsewhere_none(
    start_worker, tmp_path
):
    # Given a key held by a job that runs until its gate opens
    held_path, fresh_path = tmp_path / "held", tmp_path / "fresh"
    gate = tmp_path / "gate"
    with session_scope() as s:
        holder = outbox.enqueue(
            s, gated, str(tmp_path / "holder"), str(gate), unique_key="sync:held"
        )

    # When one job sends a fresh key twice and another job sends the held key twice
    start_worker(*ACTORS, queues=("tests",))
    fresh = send_unique_twice.send(str(fresh_path), "sync:fresh").message_id
    held = send_unique_twice.send(str(held_path), "sync:held").message_id
    wait_until(lambda: state(fresh) == state(held) == "succeeded", timeout=30)

    # Then the fresh key's job ran once and the held key's sends were dropped at the commit
    wait_until(lambda: _lines(fresh_path) == 1, timeout=30)
    touched = Counter(path for _, _, path in _ledger_rows("tests.touch"))
    assert touched == {str(fresh_path): 1}
    assert _lines(held_path) == 0
    assert state(holder) in ("enqueued", "running")
    gate.touch()
    wait_until(lambda: state(holder) == "succeeded", timeout=30)


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"unique_key": "k" * 201}, "at most 200"),
        ({"unique_key": ""}, "non-empty"),
        ({"unique_key": "k", "unique_for": 0}, "positive"),
        ({"unique_key": "k", "unique_for": -5}, "positive"),
        ({"unique_for": 1000}, "without unique_key"),
        ({"unique_key": "k", "on_duplicate": "ignore"}, "on_duplicate"),
    ],
)
def test_bad_unique_options_fail_at_send_time_and_write_nothing(clean, tmp_path, options, error):
    # Given an empty database
    # When a send asks for impossible uniqueness, through the outbox or as a plain send
    with pytest.raises(InvalidSend, match=error), session_scope() as s:
        outbox.enqueue(s, touch, str(tmp_path / uuid.uuid4().hex), **options)
    with pytest.raises(InvalidSend, match=error):
        touch.send_with_options(args=(str(tmp_path / "x"),), **options)
    # Then nothing was written
    assert _counts() == (0, 0, 0)


def test_an_actors_unique_option_derives_the_key_from_the_args_for_every_send(
    start_worker, tmp_path
):
    # Given an actor declared with unique_key=<a function of its args> and unique_for, and no
    # worker consuming yet (its jobs stay enqueued, holding their keys)
    gate = str(tmp_path / "gate")
    one, two = str(tmp_path / "report-1"), str(tmp_path / "report-2")

    # When report 1 is sent 6 times in every way there is (plain sends, the outbox by actor and
    # by name) and report 2 once, none of them naming a key
    ids = [export.send(one, gate, 1).message_id for _ in range(2)]
    for target in (export, "tests.export_once"):
        for _ in range(2):
            with session_scope() as s:
                ids.append(outbox.enqueue(s, target, one, gate, 1))
    other = export.send(two, gate, 2).message_id

    # Then there are two jobs, and every send of report 1 got its one job's id
    rows = _ledger_rows("tests.export_once")
    assert sorted(path for _, _, path in rows) == [one, two]
    assert len(set(ids)) == 1 and other != ids[0]
    with session_scope() as s:
        keys = dict(s.execute(text("SELECT key, message_id FROM job_unique_keys")).all())
    assert keys == {"export:1": ids[0], "export:2": other}

    # and a send naming its own key is not held back by the actor's
    own = export.send_with_options(args=(one, gate, 1), unique_key="export:1:again").message_id
    assert own not in ids

    # When the workers run them, each job runs once; after that the key is free again
    start_worker(*ACTORS)
    Path(gate).touch()
    wait_until(lambda: state(ids[0]) == state(other) == state(own) == "succeeded", timeout=60)
    assert (_lines(Path(one)), _lines(Path(two))) == (2, 1)
    again = export.send(one, gate, 1).message_id
    assert again != ids[0]
    wait_until(lambda: state(again) == "succeeded", timeout=30)
    assert _lines(Path(one)) == 3


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"unique_key": "k" * 201}, "at most 200"),
        ({"unique_key": "k", "unique_for": 0}, "positive"),
        ({"unique_for": 1000}, "without unique_key"),
    ],
)
def test_bad_unique_options_on_an_actor_fail_when_it_is_declared(options, error):
    import dramatiq

    with pytest.raises(InvalidSend, match=error):
        dramatiq.actor(actor_name="tests.badly_unique", queue_name="tests", **options)(print)
    assert "tests.badly_unique" not in dramatiq.get_broker().actors


def test_an_actors_key_function_that_fails_refuses_the_send_and_writes_nothing(clean, tmp_path):
    # When the key cannot be derived from the args (report_id missing), the send fails at once
    with pytest.raises(InvalidSend, match="unique_key of tests.export_once"):
        export.send(str(tmp_path / "x"), "gate")
    with pytest.raises(InvalidSend, match="unique_key of tests.export_once"), session_scope() as s:
        outbox.enqueue(s, export, str(tmp_path / "x"), "gate")
    # Then nothing was written
    assert _counts() == (0, 0, 0)


def test_a_scheduled_job_holds_its_key_until_it_has_run(start_worker, tmp_path):
    # Given a unique job delayed a minute (held in the outbox: 'scheduled')
    path = str(tmp_path / "later")
    first = touch.send_with_options(args=(path,), unique_key="digest:1", delay=60_000).message_id
    assert state(first) == "scheduled"
    # When the same key is sent again, now or delayed, through the outbox or plainly
    again = touch.send_with_options(args=(path,), unique_key="digest:1").message_id
    with session_scope() as s:
        queued = outbox.enqueue(s, touch, path, unique_key="digest:1", delay_ms=5_000)
    # Then every send got the scheduled job's id, and there is one job
    assert again == queued == first
    assert [mid for mid, _, _ in _ledger_rows("tests.touch")] == [first]
    with pytest.raises(DuplicateJob, match="digest:1"):
        touch.send_with_options(args=(path,), unique_key="digest:1", on_duplicate="refuse")
