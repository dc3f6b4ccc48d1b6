"""The console in a real browser against real workers, RabbitMQ and PostgreSQL.

Each test does what an operator would, then checks the effect where it lands (the ledger, the
dead letters, the audit log, the worker's own log), not only what the page says.
"""

from __future__ import annotations

import json
import re

from sqlalchemy import select

from actors.orders import process_order_async
from jobcore.db import session_scope
from jobcore.ledger import queries as ledger_queries
from jobcore.models import AuditLog, DeadLetter
from shop.models import ScheduleState
from tests.integration.console.conftest import cli
from tests.support.factories import make_order, make_product, make_user
from tests.support.faulty_actors import always_fails, fails_until_fixed, touch
from tests.support.ledger import entry, state
from tests.support.waiting import wait_until

TEST_ACTORS = ("actors", "tests.support.faulty_actors")


def _letters(actor: str) -> list[DeadLetter]:
    with session_scope() as s:
        return list(
            s.scalars(select(DeadLetter).where(DeadLetter.actor == actor).order_by(DeadLetter.id))
        )


def _audit(action: str) -> list[AuditLog]:
    with session_scope() as s:
        return list(
            s.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id))
        )


def test_an_operator_finds_an_orders_failed_step_and_reads_its_traceback(
    stand_ins, start_worker, browse
):
    # Given an order whose card is declined: payment validation fails, compensation runs
    with session_scope() as s:
        order_id = make_order(
            s, user=make_user(s), lines=[(make_product(s, stock=3), 1)], payment_token="tok_decline"
        ).id
    start_worker("actors")
    process_order_async.send(order_id)
    wait_until(
        lambda: (
            {r.actor: r.state for r in _history(order_id)}.get("orders.compensate_order")
            == "succeeded"
        ),
        timeout=60,
        what="the order's pipeline stopped and compensated",
    )
    b = browse("olga", "operator")

    # When the operator filters the jobs by the order's number and opens its timeline
    b.goto("/jobs")
    b.page.fill("#job-filters input[name=order]", str(order_id))
    b.page.click("#job-filters button[type=submit]")
    b.page.wait_for_url(re.compile(rf"/jobs\?.*order={order_id}"))
    b.shot("jobs-of-the-order")
    b.page.click(f"#jobs a[href='/orders/{order_id}']")
    b.page.wait_for_url(f"{b.base}/orders/{order_id}")
    b.shot("order-timeline")

    # Then the page says where it stopped, and the failed step's traceback reads like the ledger's
    stopped = b.page.inner_text("#stopped")
    assert "payments.validate_payment" in stopped and "declined" in stopped.lower()
    failed = next(r for r in _history(order_id) if r.state == "failed")
    row = b.page.locator(f"#job-{failed.message_id}")
    row.locator("summary").click()
    traceback = row.locator("pre.tb").inner_text()
    b.shot("failed-step-traceback")
    assert "Traceback" in traceback and failed.traceback.strip().splitlines()[-1] in traceback
    assert "orders.compensate_order" in b.page.inner_text("#timeline")
    assert not b.errors, b.errors


def _history(order_id: int) -> list:
    with session_scope() as s:
        return ledger_queries.history_of_order(s, order_id)


def test_a_dead_letter_replayed_from_the_console_succeeds_on_a_real_worker(
    start_worker, browse, tmp_path
):
    # Given a job that failed for good because its cause was not fixed yet
    start_worker(*TEST_ACTORS)
    fix = tmp_path / "fixed"
    old_id = fails_until_fixed.send(str(fix)).message_id
    [letter] = wait_until(lambda: _letters("tests.fails_until_fixed"), what="a dead letter")
    b = browse("olga", "operator")

    # When the cause is fixed and the operator replays it from its page
    b.goto("/dead-letters")
    b.page.click(f"#dead-letters a[href='/dead-letters/{letter.id}']")
    b.page.wait_for_url(f"{b.base}/dead-letters/{letter.id}")
    b.shot("dead-letter")
    assert "the cause is not fixed yet" in b.page.inner_text("body")
    fix.write_text("deployed")
    b.page.click("#replay-form button")
    b.page.wait_for_selector("#outcome")
    b.shot("replayed")
    assert "1 of 1 done" in b.page.inner_text("#outcome")

    # Then the new job succeeds on the worker, linked to the old one, and the audit says who
    b.page.click("#results a")
    new_id = b.page.url.rsplit("/", 1)[1]
    wait_until(lambda: state(new_id) == "succeeded", what="the replay ran")
    b.page.reload()
    b.shot("replay-succeeded")
    assert "succeeded" in b.page.inner_text("h1")
    assert old_id[:13] in b.page.inner_text("#lineage")
    assert entry(new_id).replay_of == old_id
    [audit] = _audit("dlq.replay")
    assert audit.actor == "console:olga" and audit.details["new_message_id"] == new_id
    b.goto("/audit")
    assert "dlq.replay" in b.page.inner_text("#audit") and "console:olga" in b.page.inner_text(
        "#audit"
    )
    assert not b.errors, b.errors


def test_bulk_replay_replays_only_the_previewed_dead_letters_while_new_ones_arrive(
    start_worker, browse, tmp_path
):
    # Given six dead letters of one actor, and one of another actor outside the filter
    start_worker(*TEST_ACTORS)
    fix = tmp_path / "fixed"
    for _ in range(6):
        fails_until_fixed.send(str(fix))
    always_fails.send(1)
    wait_until(
        lambda: len(_letters("tests.fails_until_fixed")) == 6 and _letters("tests.always_fails"),
        what="seven dead letters",
    )
    b = browse("olga", "operator")

    # When the operator filters by actor and previews a bulk replay
    b.goto("/dead-letters?actor=tests.fails_until_fixed")
    b.page.click("#bulk-replay")
    b.page.wait_for_selector("#bulk-form")
    b.shot("bulk-preview")
    assert "6" in b.page.inner_text("h1")
    previewed = {
        int(v)
        for v in b.page.eval_on_selector_all(
            "#bulk-form input[name=id]", "els => els.map(e => e.value)"
        )
    }
    assert previewed == {d.id for d in _letters("tests.fails_until_fixed")}

    # ... and three more dead letters arrive before the operator confirms
    for _ in range(3):
        fails_until_fixed.send(str(fix))
    wait_until(
        lambda: len(_letters("tests.fails_until_fixed")) == 9, what="three more dead letters"
    )
    fix.write_text("deployed")
    b.page.click("#bulk-form button[type=submit]")
    b.page.wait_for_selector("#outcome")
    b.shot("bulk-done")
    assert "6 of 6 done" in b.page.inner_text("#outcome")

    # Then exactly the previewed six were replayed and succeed; the newcomers and the other wait
    letters = _letters("tests.fails_until_fixed")
    assert {d.id for d in letters if d.replayed_at is not None} == previewed
    assert len([d for d in letters if d.replayed_at is None]) == 3
    assert _letters("tests.always_fails")[0].replayed_at is None
    replays = [d.replay_message_id for d in letters if d.replay_message_id]
    wait_until(lambda: all(state(m) == "succeeded" for m in replays), what="the six replays ran")
    assert len(_audit("dlq.replay")) == 6
    assert not b.errors, b.errors


def test_an_operator_cancels_a_delayed_job_and_the_worker_skips_it(start_worker, browse, tmp_path):
    # Given a job delayed long enough for the operator's clicks on a loaded machine, and a worker
    worker = start_worker(*TEST_ACTORS)
    path = tmp_path / "should-not-exist"
    message_id = touch.send_with_options(args=(str(path),), delay=12_000).message_id
    import broker

    broker.flush_ledger()
    b = browse("olga", "operator")

    # When the operator finds it among the waiting jobs and cancels it with a reason
    b.goto("/jobs?state=enqueued&actor=tests.touch")
    b.page.click(f"#jobs a[href='/jobs/{message_id}']")
    b.page.wait_for_url(f"{b.base}/jobs/{message_id}")
    b.shot("delayed-job")
    b.page.fill("#cancel-form input[name=reason]", "customer called")
    b.page.click("#cancel-form button")
    b.page.wait_for_selector("#outcome")
    b.shot("cancelled")
    assert "1 of 1 done" in b.page.inner_text("#outcome")

    # Then it is cancelled in the ledger, audited, and skipped by the worker when due
    assert state(message_id) == "cancelled" and "customer called" in entry(message_id).error
    [audit] = _audit("jobs.cancel")
    assert audit.actor == "console:olga" and audit.details["cancelled"] == [message_id]
    wait_until(
        lambda: "was cancelled; skipped" in worker.log(), timeout=60, what="the worker skipped it"
    )
    assert not path.exists()
    b.goto(f"/jobs/{message_id}")
    assert "cancelled" in b.page.inner_text("h1")
    assert not b.errors, b.errors


def test_an_operator_pauses_and_resumes_a_schedule(browse):
    b = browse("olga", "operator")
    b.goto("/schedules")
    row = b.page.locator("#schedule-relay-outbox")
    assert row.locator(".sched-state").inner_text() == "active"

    row.locator("button[value=pause]").click()
    b.page.wait_for_selector("#outcome")
    b.shot("paused")
    assert _paused("relay-outbox") is True
    b.goto("/schedules")
    assert b.page.locator("#schedule-relay-outbox .sched-state").inner_text() == "paused"

    b.page.locator("#schedule-relay-outbox button[value=resume]").click()
    b.page.wait_for_selector("#outcome")
    assert _paused("relay-outbox") is False
    assert [a.subject for a in _audit("schedules.pause")] == ["relay-outbox"]
    assert [a.actor for a in _audit("schedules.resume")] == ["console:olga"]
    assert not b.errors, b.errors


def _paused(name: str) -> bool | None:
    with session_scope() as s:
        row = s.get(ScheduleState, name)
        return None if row is None else row.paused


def test_a_viewer_reads_every_page_but_cannot_act(start_worker, browse):
    start_worker(*TEST_ACTORS)
    always_fails.send(3)
    [letter] = wait_until(lambda: _letters("tests.always_fails"), what="a dead letter")
    b = browse("vera", "viewer")

    # The pages show no action to a viewer...
    b.goto(f"/dead-letters/{letter.id}")
    assert b.page.locator("#replay-form").count() == 0
    b.goto("/dead-letters")
    assert b.page.locator("#bulk-replay").count() == 0
    assert b.goto("/dead-letters/bulk?action=replay").status == 403

    # ... and a request forged with the viewer's own valid session and CSRF token is refused
    status = b.page.evaluate(
        """async (id) => {
        const r = await fetch('/dead-letters/' + id + '/replay', {method: 'POST',
            headers: {'Content-Type': 'application/x-www-form-urlencoded'},
            body: 'csrf_token=' + encodeURIComponent(document.body.dataset.csrf)});
        return r.status; }""",
        letter.id,
    )
    assert status == 403
    assert _letters("tests.always_fails")[0].replayed_at is None and not _audit("dlq.replay")


def test_a_form_without_its_csrf_token_is_refused(start_worker, browse):
    start_worker(*TEST_ACTORS)
    always_fails.send(4)
    [letter] = wait_until(lambda: _letters("tests.always_fails"), what="a dead letter")
    b = browse("olga", "operator")
    b.goto(f"/dead-letters/{letter.id}")

    # When the replay form is sent without its token (as a forged cross-site form would be)
    b.page.eval_on_selector("#replay-form input[name=csrf_token]", "el => el.remove()")
    with b.page.expect_response(lambda r: r.url.endswith("/replay")) as caught:
        b.page.click("#replay-form button")
    b.shot("refused")

    # Then it is refused, and nothing was replayed
    assert caught.value.status == 403
    assert "CSRF" in b.page.inner_text("#error-detail")
    assert _letters("tests.always_fails")[0].replayed_at is None and not _audit("dlq.replay")


def test_lists_update_live_without_a_reload(start_worker, browse):
    start_worker(*TEST_ACTORS)
    b = browse("olga", "operator")
    b.goto("/dead-letters")
    b.page.evaluate("window.stillTheSamePage = true")
    assert b.page.locator("#dead-letters tbody tr[data-href]").count() == 0

    always_fails.send(5)
    b.page.wait_for_selector("#dead-letters tbody tr[data-href]", timeout=30_000)
    b.shot("arrived-live")
    assert b.page.evaluate("window.stillTheSamePage") is True
    assert b.page.locator("#live-dot.on").count() == 1

    # A hidden tab closes its stream and misses changes; shown again, it catches up at once
    b.page.evaluate(VISIBILITY, True)
    assert b.page.locator("#live-dot.on").count() == 0
    always_fails.send(6)
    wait_until(lambda: len(_letters("tests.always_fails")) == 2, what="a second dead letter")
    b.page.wait_for_timeout(1500)  # three live polls: a listening tab would have updated
    assert b.page.locator("#dead-letters tbody tr[data-href]").count() == 1
    b.page.evaluate(VISIBILITY, False)
    rows = b.page.locator("#dead-letters tbody tr[data-href]")
    wait_until(lambda: rows.count() == 2, what="the shown tab caught up")
    assert b.page.evaluate("window.stillTheSamePage") is True


VISIBILITY = """(hidden) => {
    Object.defineProperty(document, 'hidden', {value: hidden, configurable: true});
    document.dispatchEvent(new Event('visibilitychange')); }"""


def test_every_page_renders_and_bad_input_gets_a_clear_400_or_404(start_worker, browse, tmp_path):
    start_worker(*TEST_ACTORS)
    ok = touch.send_with_options(args=(str(tmp_path / "x"),), kwargs={"order_id": 12}).message_id
    bad = always_fails.send(13).message_id
    [letter] = wait_until(lambda: _letters("tests.always_fails"), what="a dead letter")
    wait_until(lambda: state(ok) == "succeeded", what="a finished job")
    b = browse("ada", "admin")

    for path in (
        "/",
        "/jobs",
        f"/jobs/{bad}",
        "/orders/12",
        "/failures",
        "/dead-letters",
        f"/dead-letters/{letter.id}",
        "/queues",
        "/schedules",
        "/workers",
        "/audit",
        "/ledger",
        "/jobs?state=failed&since=1h",
        "/jobs?arg=order_id=12",
    ):
        assert b.goto(path).status == 200, path
    assert b.page.locator("#jobs tbody tr[data-href]").count() == 1  # the argument search
    b.goto("/failures")
    assert "RuntimeError" in b.page.inner_text("#failures")

    for path, status, says in (
        ("/jobs?state=exploded", 400, "state must be one of"),
        ("/jobs?after=not-a-cursor", 400, "cursor"),
        ("/jobs?since=yesterday", 400, "ISO time"),
        ("/jobs?order=12abc", 400, "whole number"),
        ("/jobs?colour=red", 400, "unknown filter"),
        ("/jobs?actor=" + "x" * 300, 400, "longer than"),
        ("/jobs?" + "&".join(f"arg=a{i}=1" for i in range(400)), 414, "too long"),
        ("/jobs/no-such-job", 404, "no job with message id"),
        ("/orders/999999", 404, "no jobs recorded"),
        ("/orders/-5", 400, "not an order number"),
        ("/orders/99999999999999999999999", 400, "not an order number"),
        ("/dead-letters/987654", 404, "no dead letter"),
        ("/dead-letters?before=1", 404, "past the end"),
        ("/no/such/page", 404, "no page"),
    ):
        response = b.goto(path)
        assert response.status == status, (path, response.status)
        assert says in b.page.inner_text("body"), (path, b.page.inner_text("body")[:300])
    after = json.loads(b.page.context.request.get(b.base + "/jobs.json?state=succeeded").text())
    assert [j["message_id"] for j in after["jobs"]] == [ok]
    cursor = b.goto("/jobs?limit=1")
    assert cursor.status == 200 and b.page.locator("a[rel=next]").count() == 1
    b.page.click("a[rel=next]")
    assert b.page.locator("#jobs tbody tr[data-href]").count() == 1
    assert not [e for e in b.errors if "status of 4" not in e], b.errors


def test_keyboard_shortcuts_dark_mode_and_a_read_only_api_token(
    chromium, console_process, browse, monkeypatch, capsys
):
    b = browse("olga", "operator")

    # Keys: g then d goes to the dead letters, / focuses the search, ? opens the help
    b.page.keyboard.press("g")
    b.page.keyboard.press("d")
    b.page.wait_for_url(f"{b.base}/dead-letters")
    b.page.keyboard.press("/")
    assert b.page.evaluate("document.activeElement.id") == "search"
    b.page.keyboard.press("Escape")
    b.page.keyboard.press("?")
    assert b.page.locator("#keys[open]").count() == 1

    # Dark mode follows the system's preference
    dark = chromium.new_context(color_scheme="dark")
    try:
        page = dark.new_page()
        page.goto(console_process.url + "/login")
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(20, 23, 27)", background
    finally:
        dark.close()

    # A token made by the CLI reads the JSON twins, and cannot act
    assert cli(["console", "token", "olga"]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    request = b.context.request
    headers = {"Authorization": f"Bearer {token}"}
    listing = request.get(
        console_process.url + "/jobs.json",
        headers=headers,
        fail_on_status_code=False,
        max_redirects=0,
    )
    assert listing.status == 200 and "jobs" in listing.json()
    refused = request.get(
        console_process.url + "/jobs.json",
        headers={"Authorization": "Bearer not-a-token"},
        max_redirects=0,
    )
    assert refused.status == 401


def test_an_operator_follows_a_child_to_its_groups_page_and_reads_its_progress(
    start_worker, browse, tmp_path
):
    # Given a group of 20 jobs, 2 of which fail for good, with an on_settled callback, run by a
    # real worker until it has settled
    from jobcore.groups import group
    from tests.support.group_actors import group_callback, group_child

    children = [group_child.message(n, n in (3, 11)) for n in range(20)]
    g = group(children, on_settled=group_callback.message(str(tmp_path / "cb"), "on_settled"))
    with session_scope() as s:
        g.enqueue(s)
    start_worker("actors", "tests.support.group_actors")
    wait_until(lambda: (tmp_path / "cb").exists(), timeout=60, what="the group settled")
    b = browse("vera", "viewer")

    # When the operator opens a failed child's page and follows its group link
    failed = children[3].message_id
    b.goto(f"/jobs/{failed}")
    b.page.click(f"#job-group a[href='/groups/{g.id}']")
    b.page.wait_for_url(f"{b.base}/groups/{g.id}")
    b.shot("group")

    # Then the group's page shows its progress, its callback and its children, failed first
    assert b.page.inner_text("#group-counts") == "18 succeeded, 2 failed, 0 pending of 20"
    assert "on_settled" in b.page.inner_text("#group-fired")
    rows = b.page.locator("#group-children tbody tr")
    assert rows.count() == 20
    first_two = {rows.nth(i).get_attribute("data-href") for i in range(2)}
    assert first_two == {f"/jobs/{children[3].message_id}", f"/jobs/{children[11].message_id}"}
    # and its JSON twin says the same; an unknown group is a clear 404
    data = json.loads(b.page.context.request.get(f"{b.base}/groups/{g.id}.json").text())
    assert (data["group"]["succeeded"], data["group"]["failed"], data["shown"]) == (18, 2, 20)
    assert set(data["fired"]) == {"on_settled"}
    response = b.goto("/groups/no-such-group")
    assert response.status == 404 and "no group with id" in b.page.inner_text("body")
    assert not [e for e in b.errors if "status of 4" not in e], b.errors
