"""SMTP and SMS faults: what is retried, what is not, what is never lost or doubled, no PII in logs."""

from __future__ import annotations

from actors import email as email_actors
from jobcore.db import session_scope
from programs import cli
from shop.models import EmailLog
from shop.orders import orders
from tests.support.factories import make_order, make_user
from tests.support.notify import ledger_count, notification, settled
from tests.support.waiting import wait_until

WORKER = {"processes": 1, "threads": 4}


def _welcome(user_id: int):
    return settled("welcome", f"user:{user_id}")


def _user(**overrides) -> int:
    with session_scope() as s:
        return make_user(s, **overrides).id


def test_a_550_is_permanent_recorded_and_never_retried(mail, start_worker):
    # Given an SMTP server that refuses the recipient with 550
    user_id = _user()
    mail.set_faults(mode="smtp_550")
    start_worker("actors", **WORKER)

    # When the welcome e-mail is requested
    email_actors.send_welcome_email.send(user_id)

    # Then the notification fails for good after one attempt, with the reason recorded
    row = wait_until(lambda: _welcome(user_id), 30)
    assert (row.status, row.attempts, row.last_error) == ("failed", 1, "SMTP 550 at RCPT")
    assert mail.faults()["injected"] == 1
    wait_until(lambda: ledger_count("email.send_email", "failed") == 1, 30)
    assert ledger_count("email.send_email", "retrying") == 0
    assert mail.messages() == []
    with session_scope() as s:
        log = s.query(EmailLog).one()
        assert (log.status, log.attempts) == ("failed", 1)

    # When the operator fixes the cause and resends it from the CLI
    mail.clear_faults()
    assert cli.main(["notifications", "resend", str(row.id)]) == 0

    # Then it is delivered, once
    row = wait_until(lambda: _welcome(user_id), 30)
    assert (row.status, row.attempts, len(mail.messages(raw=False))) == ("sent", 2, 1)
    assert cli.main(["notifications", "resend", str(row.id)]) == 2  # only failed ones are resent


def test_a_421_and_a_451_are_retried_with_backoff_then_delivered_once(mail, start_worker):
    # Given a server that answers 421 to the first two MAILs, then is fine
    first, second = _user(), _user()
    mail.set_faults(mode="smtp_421", times=2)
    start_worker("actors", **WORKER)

    # When a welcome e-mail is sent
    email_actors.send_welcome_email.send(first)

    # Then it is delivered on the third attempt, once
    row = wait_until(lambda: _welcome(first), 30)
    assert (row.status, row.attempts) == ("sent", 3)
    assert mail.faults()["injected"] == 2
    assert [m["message_id"] for m in mail.messages(raw=False)] == [row.provider_message_id]

    # And a 451 at DATA is retried the same way
    mail.set_faults(mode="smtp_451", times=1)
    email_actors.send_welcome_email.send(second)
    row = wait_until(lambda: _welcome(second), 30)
    assert (row.status, row.attempts, mail.faults()["injected"]) == ("sent", 2, 1)


def test_a_hanging_server_times_out_and_the_retry_delivers(mail, start_worker):
    # Given a server that hangs at DATA once, and a 1-second SMTP timeout
    user_id = _user()
    mail.set_faults(mode="hang", delay_s=5, times=1)
    start_worker("actors", env={"SHOPJOBS_SMTP_TIMEOUT_S": "1"}, **WORKER)

    # When the welcome e-mail is sent
    email_actors.send_welcome_email.send(user_id)

    # Then the first attempt timed out and the second delivered it
    row = wait_until(lambda: _welcome(user_id), 30)
    assert (row.status, row.attempts) == ("sent", 2)
    assert "timed out" in (row.last_error or "")
    assert len(mail.messages(raw=False)) == 1


def test_a_drop_after_data_resends_with_the_same_message_id(mail, start_worker):
    # Given a server that stores the message but drops the connection before its 250
    user_id = _user()
    mail.set_faults(mode="drop_after_data", times=1)
    start_worker("actors", **WORKER)

    # When the welcome e-mail is sent
    email_actors.send_welcome_email.send(user_id)

    # Then the receiver got it twice (the window the design names), with one Message-ID
    row = wait_until(lambda: _welcome(user_id), 30)
    received = mail.messages(raw=False)
    assert (row.status, row.attempts, len(received)) == ("sent", 2, 2)
    assert {m["message_id"] for m in received} == {row.provider_message_id}


def test_sms_gateway_errors_are_retried_and_texted_once(sms, mail, start_worker):
    # Given a gateway that answers 503 once, and a customer who wants SMS
    with session_scope() as s:
        user = make_user(s, phone="+4915100000003", notify_sms=True)
        order_id = make_order(s, user=user).id
    sms.set_faults(mode="http_503", times=1)
    start_worker("actors", **WORKER)

    # When the order confirmation is requested
    orders.notify(order_id, "order_confirmation")

    # Then the SMS went out on the second attempt, once
    row = wait_until(lambda: settled("order_confirmation", f"order:{order_id}", "sms"), 30)
    assert (row.status, row.attempts) == ("sent", 2)
    assert sms.faults()["injected"] == 1
    assert [m["to"] for m in sms.messages()] == ["+4915100000003"]
    assert notification("order_confirmation", f"order:{order_id}").status in ("sending", "sent")


def test_no_address_phone_name_or_link_token_reaches_the_worker_log(
    mail, sms, start_worker, tmp_path
):
    # Given customers with canary personal data, and faults that make the worker log errors
    canary = {
        "email": "canary.mail.7f3a@example.test",
        "phone": "+4915199887766",
        "full_name": "Zyxcanary Qwvtest",
    }
    with session_scope() as s:
        user = make_user(s, notify_sms=True, **canary)
        other = make_user(s, email="canary.other.9b1c@example.test", full_name="Ovcanary Blip")
        order_id = make_order(s, user=user, tracking_number="TRKCANARY").id
        ids = (user.id, other.id, order_id)
    worker = start_worker("actors", log_path=str(tmp_path / "worker.log"), **WORKER)

    # When e-mails and SMS go through a 421, a 550 and an SMS 503
    mail.set_faults(mode="smtp_421", times=1)
    sms.set_faults(mode="http_503", times=1)
    email_actors.send_welcome_email.send(ids[0])
    orders.notify(ids[2], "order_confirmation")
    wait_until(
        lambda: (
            _welcome(ids[0])
            and settled("order_confirmation", f"order:{ids[2]}", "sms")
            and settled("order_confirmation", f"order:{ids[2]}")
        ),
        30,
    )
    mail.set_faults(mode="smtp_550")
    email_actors.send_welcome_email.send(ids[1])
    wait_until(lambda: _welcome(ids[1]), 30)
    wait_until(lambda: ledger_count("email.send_email", "failed") == 1, 30)

    # Then the log shows the jobs and ids, and none of the personal data
    log = worker.log()
    assert "Retrying" in log or "retry" in log.lower()
    assert "notification" in log
    for secret in [
        *canary.values(),
        "canary.other.9b1c@example.test",
        "Ovcanary",
        "Zyxcanary",
        "token=",
    ]:
        assert secret not in log, f"{secret!r} leaked into the worker log"
