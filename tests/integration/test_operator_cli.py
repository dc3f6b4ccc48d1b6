"""The operator's CLI against real workers: cancel, workers, tail."""

from __future__ import annotations

import json
import threading

import broker as shop_broker
from programs.cli import main as cli
from tests.support import amqp
from tests.support.faulty_actors import hang_first_time, noop, touch
from tests.support.ledger import entry, state
from tests.support.waiting import wait_until

TEST_ACTORS = ("actors", "tests.support.faulty_actors")


def _json_out(capsys) -> list[dict]:
    return json.loads(capsys.readouterr().out)


def test_a_cancelled_delayed_job_is_skipped_when_it_arrives_and_shows_as_cancelled(
    start_worker, tmp_path, capsys
):
    # Given two delayed jobs, one of which an operator cancels before it is due
    worker = start_worker(*TEST_ACTORS)
    cancelled_path, kept_path = tmp_path / "cancelled", tmp_path / "kept"
    cancelled = touch.send_with_options(args=(str(cancelled_path),), delay=1500).message_id
    kept = touch.send_with_options(args=(str(kept_path),), delay=1500).message_id
    shop_broker.flush_ledger()
    assert cli(["jobs", "cancel", cancelled, "--reason", "customer called", "--json"]) == 0
    [out] = _json_out(capsys)
    assert (out["message_id"], out["actor"], out["state"], out["cancelled"]) == (
        cancelled,
        "tests.touch",
        "cancelled",
        True,
    )

    # When both fall due
    wait_until(lambda: kept_path.exists() and state(kept) == "succeeded", what="the kept job ran")
    wait_until(
        lambda: "was cancelled; skipped" in worker.log(),
        what="the cancelled job arrived and was skipped",
    )
    wait_until(
        lambda: amqp.depth("tests") == 0 and amqp.depth("tests.DQ") == 0, what="queues drained"
    )

    # Then the cancelled one never ran, and the ledger says why
    assert not cancelled_path.exists()
    row = entry(cancelled)
    assert row.state == "cancelled" and "customer called" in row.error and row.attempts == 0


def test_cancelling_by_order_skips_only_that_orders_pending_jobs(start_worker, tmp_path, capsys):
    worker = start_worker(*TEST_ACTORS)
    paths = {n: tmp_path / f"job-{n}" for n in range(3)}
    ids = [
        touch.send_with_options(
            args=(str(paths[0]),), kwargs={"order_id": 77}, delay=1500
        ).message_id,
        touch.send_with_options(
            args=(str(paths[1]),), kwargs={"order_id": 77}, delay=1500
        ).message_id,
        touch.send_with_options(
            args=(str(paths[2]),), kwargs={"order_id": 78}, delay=1500
        ).message_id,
    ]
    shop_broker.flush_ledger()

    assert cli(["jobs", "cancel", "--order", "77", "--reason", "order withdrawn", "--json"]) == 0
    assert sorted(r["message_id"] for r in _json_out(capsys) if r["cancelled"]) == sorted(ids[:2])

    wait_until(lambda: state(ids[2]) == "succeeded", what="order 78's job ran")
    wait_until(
        lambda: worker.log().count("was cancelled; skipped") == 2,
        what="both cancelled jobs skipped",
    )
    assert [p.exists() for p in paths.values()] == [False, False, True]
    assert [state(i) for i in ids] == ["cancelled", "cancelled", "succeeded"]


def test_cancel_refuses_what_it_cannot_cancel_with_clear_exit_codes(start_worker, capsys):
    start_worker(*TEST_ACTORS)
    done = noop.send(1).message_id
    wait_until(lambda: state(done) == "succeeded", what="a finished job")

    assert cli(["jobs", "cancel", done, "no-such-id", "--reason", "too late", "--json"]) == 1
    notes = {r["message_id"]: r["note"] for r in _json_out(capsys)}
    assert notes == {done: "not cancelled: it is succeeded", "no-such-id": "no such job"}
    assert state(done) == "succeeded"
    assert cli(["jobs", "cancel", "--reason", "nothing named"]) == 2
    assert cli(["jobs", "cancel", done, "--order", "5", "--reason", "both"]) == 2
    assert cli(["jobs", "cancel", done, "--reason", " "]) == 2


def test_workers_lists_live_processes_and_what_they_run(start_worker, tmp_path, capsys):
    # Given a 2-process worker, one of whose threads runs a long job
    worker = start_worker(*TEST_ACTORS, processes=2, threads=3)
    long_job = hang_first_time.send(str(tmp_path / "marker")).message_id
    wait_until(lambda: state(long_job) == "running", what="the long job started")

    def both_listed() -> list[dict] | None:
        cli(["workers", "--json"])
        rows = _json_out(capsys)
        busy = [r for r in rows if r["running"] and r["held"].get("tests")]
        return rows if len(rows) == 2 and busy else None

    rows = wait_until(
        both_listed, what="both processes registered, one running and holding the long job"
    )
    assert all(r["alive"] and r["threads"] == 3 and "tests" in r["queues"] for r in rows)
    assert sorted(r["running"] for r in rows) == [0, 1]
    busy = next(r for r in rows if r["running"])
    assert (
        busy["running_actors"] == ["tests.hang_first_time"]
        and busy["name"] == entry(long_job).worker
    )

    # When the worker group stops cleanly, its processes unregister
    worker.stop()
    assert cli(["workers", "--json"]) == 1 and _json_out(capsys) == []


def test_jobs_tail_follows_state_changes_as_they_happen(start_worker, capsys):
    start_worker(*TEST_ACTORS)
    result: dict[str, int] = {}
    follower = threading.Thread(
        target=lambda: result.setdefault(
            "code",
            cli(
                [
                    "jobs",
                    "tail",
                    "--json",
                    "--actor",
                    "tests.noop",
                    "--state",
                    "succeeded",
                    "--since",
                    "1s",
                    "--max-lines",
                    "4",
                    "--for",
                    "60",
                ]
            ),
        )
    )
    follower.start()
    sent = [noop.send(i).message_id for i in range(4)]
    follower.join(90)

    assert result == {"code": 0}
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(line["message_id"] for line in lines) == sorted(sent)
    assert {line["state"] for line in lines} == {"succeeded"}


def test_a_command_that_needs_rabbitmq_says_it_is_unreachable_with_exit_3(monkeypatch, capsys):
    # Given a broker URL where nothing listens
    from devtools.ports import free_port

    monkeypatch.setenv("SHOPJOBS_AMQP_URL", f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F")

    # When the operator asks for the queues' depths
    code = cli(["queues"])

    # Then the exit code says "a service could not be reached", and stderr names RabbitMQ
    assert code == 3
    assert "RabbitMQ could not be reached" in capsys.readouterr().err


def test_a_queue_rabbitmq_refuses_to_show_is_reported_with_exit_3(monkeypatch, capsys):
    # Given a broker that refuses the passive declare (403: the login may not read the queue)
    import pika

    from jobcore import queue_depth

    def refused(*args: object, **kwargs: object) -> dict[str, int]:
        raise pika.exceptions.ChannelClosedByBroker(403, "ACCESS_REFUSED - no read access")

    monkeypatch.setattr(queue_depth, "message_counts", refused)

    # When the operator asks for the queues' depths, Then the refusal is said, with exit 3
    assert cli(["queues"]) == 3
    assert "RabbitMQ refused: 403 ACCESS_REFUSED" in capsys.readouterr().err
