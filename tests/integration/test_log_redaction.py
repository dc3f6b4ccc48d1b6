"""A real worker's logs: JSON lines bound to the job, and no secret in logs, metrics or the ledger."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator

import pytest
from sqlalchemy import text

import broker
from devtools.ports import free_port
from devtools.processes import Worker
from jobcore.db import get_engine
from tests.support.canary_actors import canary_signup, canary_smtp
from tests.support.ledger import state
from tests.support.metrics import try_scrape
from tests.support.waiting import wait_until

PASSWORD = "Hunter2-Canary-Pw!"
EMAIL = "canary.person@example.org"
TOKEN = "sk_live_CanaryToken4242abcd"
CARD = "4111 1111 1111 1111"
CANARIES = (PASSWORD, EMAIL, TOKEN, CARD, CARD.replace(" ", ""), "4111111111111111")
MAIN_PROCESS_LINE = re.compile(
    r"^\[[^]]+\] \[PID \d+\] \[MainThread\] \[dramatiq\.(MainProcess|ForkProcess\(\d+\))\]"
)


@dataclasses.dataclass
class Run:
    log_lines: list[str]
    metrics: str
    ledger_rows: list[str]
    dead_letter_rows: list[str]
    signup_id: str
    smtp_id: str


@pytest.fixture(scope="module")
def canary_run(infrastructure: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    # Given a JSON-logging worker configured with a secret SMTP password
    tmp = tmp_path_factory.mktemp("canary")
    port = free_port()
    worker = Worker(
        ("actors", "tests.support.faulty_actors", "tests.support.canary_actors"),
        processes=2,
        threads=2,
        log_path=str(tmp / "worker.log"),
        env={
            "SHOPJOBS_LOG_FORMAT": "json",
            "SHOPJOBS_METRICS_PORT": str(port),
            "SHOPJOBS_SMTP_USER": "shop",
            "SHOPJOBS_SMTP_PASSWORD": PASSWORD,
        },
    )
    try:
        worker.wait_ready()
        # When jobs carrying a password, an e-mail address, a token and a card number fail and retry
        signup = canary_signup.send(
            7,
            42,
            EMAIL,
            password=PASSWORD,
            card_number=CARD,
            note=f"token {TOKEN}",
            marker_path=str(tmp / "marker"),
        )
        smtp = canary_smtp.send(8)
        broker.flush_ledger()
        wait_until(
            lambda: state(signup.message_id) == "succeeded", what="sign-up succeeded on its retry"
        )
        wait_until(lambda: state(smtp.message_id) == "failed", what="smtp job failed for good")
        metrics = wait_until(lambda: try_scrape(port), what="metrics")
        wait_until(
            lambda: '"dead letter' in worker.log() or "dead letter:" in worker.log(),
            what="dead letter logged",
        )
    finally:
        worker.stop()
    with get_engine().connect() as conn:
        ledger = [r[0] for r in conn.execute(text("SELECT row_to_json(j)::text FROM job_ledger j"))]
        dead = [
            r[0]
            for r in conn.execute(
                text(
                    "SELECT json_build_object('error', error, 'traceback', traceback)::text FROM dead_letters"
                )
            )
        ]
    with open(tmp / "worker.log") as fh:
        lines = [line.rstrip("\n") for line in fh if line.strip()]
    yield Run(lines, metrics, ledger, dead, signup.message_id, smtp.message_id)


def _json_lines(run: Run) -> list[dict[str, object]]:
    return [json.loads(line) for line in run.log_lines if line.startswith("{")]


def test_every_worker_process_line_is_json_and_job_lines_carry_the_jobs_identity(canary_run):
    # Then every line but the dramatiq main process's own is a JSON object
    others = [line for line in canary_run.log_lines if not line.startswith("{")]
    assert all(MAIN_PROCESS_LINE.match(line) for line in others), others[:5]
    events = _json_lines(canary_run)
    assert all({"event", "level", "timestamp", "logger"} <= set(e) for e in events)

    # and a line written inside the job names the message, actor, attempt and business ids
    signup = [e for e in events if e.get("message_id") == canary_run.signup_id]
    mine = [e for e in signup if e["logger"] == "tests.canary"]
    assert {e["attempt"] for e in mine} == {1, 2}
    assert all(
        e["actor"] == "tests.canary_signup" and e["user_id"] == 7 and e["order_id"] == 42
        for e in mine
    )
    # Dramatiq's own lines about the job (its failure, the retry) are bound too
    assert any(e["logger"].startswith("dramatiq") for e in signup)


def test_no_canary_value_reaches_a_log_line_a_metric_or_a_ledger_row(canary_run):
    # Then the secrets were there to leak (the jobs logged and raised with them) ...
    events = _json_lines(canary_run)
    assert any("[email]" in json.dumps(e) for e in events)
    assert any("exception" in e for e in events)
    # ... and none of them appears anywhere an operator or a scraper looks
    for canary in CANARIES:
        assert not [line for line in canary_run.log_lines if canary in line], canary
        assert canary not in canary_run.metrics, canary
        assert not [row for row in canary_run.ledger_rows if canary in row], canary
        assert not [row for row in canary_run.dead_letter_rows if canary in row], canary
    assert any(canary_run.smtp_id in row and "[secret]" in row for row in canary_run.ledger_rows)
