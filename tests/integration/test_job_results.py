"""What a job returned, kept on its ledger row: real workers, ``jobs show``, and Dramatiq's API."""

from __future__ import annotations

import json

import pytest
from dramatiq.results import ResultFailure

from programs.cli import main as cli
from tests.support.ledger import entry, state
from tests.support.returning_actors import big_export, issue_token, order_summary, refuses
from tests.support.waiting import wait_until

ACTORS = ("tests.support.returning_actors",)
TOKEN = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
EMAIL = "alice.buyer@example.com"


def _show(capsys, message_id: str, *args: str) -> str:
    capsys.readouterr()
    assert cli(["jobs", "show", message_id, *args]) == 0
    return capsys.readouterr().out


def test_a_jobs_return_value_is_on_its_ledger_row_and_shown_by_jobs_show(start_worker, capsys):
    # Given a worker, and jobs returning a small dict, a big list and a dict with secrets
    worker = start_worker(*ACTORS)
    small = order_summary.send(42)
    big = big_export.send(500)
    secret = issue_token.send(7, TOKEN, EMAIL)

    # When they have run
    for message in (small, big, secret):
        wait_until(
            lambda m=message: state(m.message_id) == "succeeded", what=f"{message} succeeded"
        )

    # Then `jobs show --json` gives the small value as it was returned
    shown = json.loads(_show(capsys, small.message_id, "--json"))
    assert shown["state"] == "succeeded"
    assert shown["result"] == {"order_id": 42, "lines": 3, "total_cents": 4599, "status": "paid"}
    # ... and the table form shows it as JSON on its own line
    [line] = [ln for ln in _show(capsys, small.message_id).splitlines() if ln.startswith("result ")]
    assert json.loads(line.removeprefix("result")) == shown["result"]

    # ... the big value is a marker that says it was cut, and how big it was
    kept = entry(big.message_id).result
    assert kept["truncated"] is True and kept["bytes"] > 30_000
    assert len(json.dumps(kept)) < 2048 and kept["preview"].startswith('[{"row":0,')

    # ... and no secret survives, neither under a secret-looking key nor inside text
    text = _show(capsys, secret.message_id, "--json")
    assert TOKEN not in text and EMAIL not in text
    assert json.loads(text)["result"] == {
        "user_id": 7,
        "api_token": "[redacted]",
        "note": "sent to [email] with [token]",
    }

    # ... while the worker logged no line per job about discarded results
    log = worker.log()
    assert "Results middleware" not in log and "has been discarded" not in log
    assert "returned a value" not in log

    # ... and Dramatiq's own result API reads the same values from the ledger
    assert small.get_result(block=True, timeout=5000)["total_cents"] == 4599


def test_a_failed_job_has_no_result_and_dramatiq_reports_its_error(start_worker):
    start_worker(*ACTORS)
    message = refuses.send(9)

    wait_until(lambda: state(message.message_id) == "failed", what="failed")

    assert entry(message.message_id).result is None
    with pytest.raises(ResultFailure) as failure:
        message.get_result(block=True, timeout=5000)
    assert failure.value.orig_exc_type == "ValueError"
    assert failure.value.orig_exc_msg == "order 9 cannot be exported"


def test_the_worker_says_once_at_boot_which_prefetch_it_uses_and_why(start_worker):
    worker = start_worker(*ACTORS, threads=4)

    lines = [line for line in worker.log().splitlines() if "queue prefetch" in line]

    assert len(lines) == 1
    assert "queue prefetch 64 per queue for 4 threads" in lines[0]
    assert "widened to 16 per thread, because acks wait for the ledger commit" in lines[0]
