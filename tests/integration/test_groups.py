"""Groups: a barrier in PostgreSQL counted with each child's final state; callbacks exactly once."""

from __future__ import annotations

import contextlib
import json
import warnings
from collections import Counter
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
from sqlalchemy import text

from jobcore.db import session_scope
from jobcore.errors import InvalidSend
from jobcore.groups import GROUP_OPTION, group, open_group
from jobcore.sends import LEDGER_RECORDED_OPTION
from programs.cli import main as cli
from tests.support.group_actors import (
    group_callback,
    group_child,
    group_flaky_child,
    start_group,
)
from tests.support.waiting import wait_until

ACTORS = ("actors", "tests.support.group_actors")
CHILDREN, FAILING = 1000, 10


def _group(group_id: str) -> tuple[int, int, int, bool]:
    with session_scope() as s:
        row = s.execute(
            text(
                "SELECT total, succeeded, failed, settled_at IS NOT NULL FROM job_groups"
                " WHERE id = :id"
            ),
            {"id": group_id},
        ).one()
    return tuple(row)  # type: ignore[return-value]


@contextlib.contextmanager
def _console() -> Iterator[Any]:
    """The console app in process, read with an API token of a viewer."""
    with warnings.catch_warnings():  # starlette asks for httpx2 at import; httpx works the same
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    from jobcore.console import auth
    from jobcore.console.app import create_app
    from jobcore.console.extensions import Extensions
    from jobcore.console.settings import ConsoleSettings
    from shop.settings import Settings

    with session_scope() as s:
        user = auth.create_user(s, "group-viewer", "viewer", "a long enough password 1")
        token = auth.open_session(s, user, kind="token", label="tests")
    app = create_app(Settings.from_env(), ConsoleSettings.from_env({}), Extensions())
    with TestClient(app, base_url="https://testserver") as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield client


def _ledger(sql: str, **params: object) -> list[tuple[object, ...]]:
    with session_scope() as s:
        return [tuple(r) for r in s.execute(text(sql), params).all()]


@pytest.mark.parametrize("fault", ["none", "every child published twice", "a worker killed"])
def test_a_group_of_1000_with_10_failures_fires_on_settled_and_on_failure_once(
    start_worker, tmp_path, capsys, fault
):
    # Given a group of 1,000 children, 10 of which fail for good, with all three callbacks
    path = tmp_path / "callbacks"
    children = [group_child.message(n, n % 100 == 7) for n in range(CHILDREN)]
    g = group(
        children,
        on_success=group_callback.message(str(path), "on_success"),
        on_failure=group_callback.message(str(path), "on_failure"),
        on_settled=group_callback.message(str(path), "on_settled"),
    )
    with session_scope() as s:
        g.enqueue(s)
    if fault == "every child published twice":
        # a second copy of every child (same message id) straight into the queue
        broker = dramatiq.get_broker()
        for m in children:
            broker.enqueue(m.copy(options={GROUP_OPTION: g.id, LEDGER_RECORDED_OPTION: True}))

    # When workers run them (for the kill: one worker process SIGKILLed a third of the way)
    worker = start_worker(*ACTORS, processes=2, threads=8)
    if fault == "a worker killed":
        wait_until(lambda: sum(_group(g.id)[1:3]) >= CHILDREN // 3, timeout=120)
        killed = worker.kill_worker_process()
        worker.wait_replaced(killed)
        assert worker.deaths() == 1
    wait_until(lambda: _group(g.id)[3], timeout=240, interval=0.2, what="the group settled")
    wait_until(
        lambda: path.exists() and len(path.read_text().splitlines()) >= 2,
        timeout=60,
        what="the callbacks ran",
    )
    callbacks_done = (
        "SELECT count(*) FROM job_ledger WHERE actor = 'tests.group_callback'"
        " AND state = 'succeeded'"
    )
    wait_until(lambda: _ledger(callbacks_done)[0][0] == 2, timeout=60)

    # Then the barrier counted each child once: 990 succeeded, 10 failed
    assert _group(g.id) == (CHILDREN, CHILDREN - FAILING, FAILING, True)
    # and on_settled and on_failure ran exactly once each, on_success never
    assert Counter(path.read_text().splitlines()) == {"on_settled": 1, "on_failure": 1}
    assert _ledger("SELECT count(*) FROM job_ledger WHERE actor = 'tests.group_callback'") == [(2,)]
    # and the ledger shows every child under its group
    assert _ledger(
        "SELECT state, count(*) FROM job_ledger WHERE group_id = :g GROUP BY state ORDER BY 1",
        g=g.id,
    ) == [("failed", FAILING), ("succeeded", CHILDREN - FAILING)]
    # and the CLI shows the group's progress
    capsys.readouterr()
    assert cli(["jobs", "group", g.id, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["succeeded"], shown["failed"], shown["pending"]) == (990, 10, 0)
    assert shown["fired"].startswith("on_failure ") and "on_settled " in shown["fired"]
    # and the console's job page shows a child's group and its progress
    if fault == "none":
        child = children[0].message_id
        with _console() as client:
            page = client.get(f"/jobs/{child}.json").json()
            html = client.get(f"/jobs/{child}").text
            group_page = client.get(f"/groups/{g.id}.json").json()
        assert page["group"]["succeeded"] == 990 and page["group"]["pending"] == 0
        assert f"{g.id}</a>: 990 succeeded, 10 failed, 0 pending of 1000" in html
        # and the group's own page, failed children first
        assert (group_page["group"]["succeeded"], group_page["shown"]) == (990, 200)
        assert {c["state"] for c in group_page["children"][:FAILING]} == {"failed"}
    if fault == "every child published twice":
        # the fault bit: the second copies were delivered (recorded as duplicates or re-runs)
        dupes = _ledger(
            "SELECT sum(duplicates) + sum(attempts) FROM job_ledger WHERE group_id = :g", g=g.id
        )[0][0]
        assert dupes > CHILDREN


def test_an_empty_group_is_refused_and_nothing_is_written(clean, tmp_path):
    # When a group of no messages is asked for, it fails at once
    with pytest.raises(InvalidSend, match="at least one message"):
        group([], on_settled=group_callback.message(str(tmp_path / "x"), "on_settled"))
    # and a group of things that are not messages too
    with pytest.raises(InvalidSend, match="takes messages"):
        group([group_child])  # type: ignore[list-item]
    # and a group opened for children sent later needs at least one
    for total in (0, -3):
        with pytest.raises(InvalidSend, match="at least one message"), session_scope() as s:
            open_group(s, total, on_settled=group_callback.message(str(tmp_path / "x"), "x"))
    # Then nothing was written
    assert _ledger("SELECT (SELECT count(*) FROM job_groups) + (SELECT count(*) FROM outbox)") == [
        (0,)
    ]


def test_a_group_as_a_pipeline_step_starts_the_next_steps_when_it_has_settled(
    start_worker, tmp_path
):
    # Given a pipeline: a step that starts a group of 50, then two steps after the group
    path = tmp_path / "steps"
    first = dramatiq.pipeline([start_group.message(str(path), 50)])
    start_worker(*ACTORS, processes=1, threads=8)

    # When it runs
    first.run()
    wait_until(
        lambda: path.exists() and len(path.read_text().splitlines()) == 2,
        timeout=120,
        what="both steps after the group ran",
    )

    # Then the steps ran in order, each once, and the first began after every child finished
    assert path.read_text().splitlines() == ["after the group", "last step"]
    (group_id,) = _ledger("SELECT id FROM job_groups")[0]
    assert _group(str(group_id)) == (50, 50, 0, True)
    [(children_done, next_started)] = _ledger(
        "SELECT (SELECT max(finished_at) FROM job_ledger WHERE group_id = :g),"
        " (SELECT min(started_at) FROM job_ledger WHERE actor = 'tests.group_callback')",
        g=group_id,
    )
    assert next_started >= children_done


def test_retried_children_count_once_with_their_last_attempts_outcome(start_worker, tmp_path):
    # Given a group of 100 children: 20 fail twice then succeed on a retry, 5 fail every one of
    # their 4 attempts (their retries run out), the rest succeed at once
    path = tmp_path / "callbacks"
    failures = [2] * 20 + [9] * 5 + [0] * 75
    children = [group_flaky_child.message(n, f) for n, f in enumerate(failures)]
    g = group(
        children,
        on_success=group_callback.message(str(path), "on_success"),
        on_failure=group_callback.message(str(path), "on_failure"),
        on_settled=group_callback.message(str(path), "on_settled"),
    )
    with session_scope() as s:
        g.enqueue(s)

    # When workers run them (each retry is the same message again, through the durable sends)
    start_worker(*ACTORS, processes=1, threads=8)
    wait_until(lambda: _group(g.id)[3], timeout=240, interval=0.2, what="the group settled")
    wait_until(lambda: path.exists() and len(path.read_text().splitlines()) >= 2, timeout=60)

    # Then the group waited for the retries and counted each child once, by its final state
    assert _group(g.id) == (100, 95, 5, True)
    assert Counter(path.read_text().splitlines()) == {"on_settled": 1, "on_failure": 1}
    # and the retries happened (the fault bit), under the same message ids as the group's
    assert _ledger(
        "SELECT attempts, state, count(*) FROM job_ledger WHERE group_id = :g"
        " GROUP BY 1, 2 ORDER BY 1, 2",
        g=g.id,
    ) == [(1, "succeeded", 75), (3, "succeeded", 20), (4, "failed", 5)]
    assert {
        r[0] for r in _ledger("SELECT message_id FROM job_ledger WHERE group_id = :g", g=g.id)
    } == {m.message_id for m in children}
