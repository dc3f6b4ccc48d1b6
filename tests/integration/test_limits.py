"""Global limits in PostgreSQL: concurrency slots with leases, and a token-bucket rate."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from devtools.stand_ins.sms import start_sms_stand_in
from jobcore.db import session_scope
from jobcore.errors import InvalidSend
from jobcore.limits import ConcurrencyLimit, LimitExceeded, RateLimit
from shop.settings import Settings, SettingsError
from tests.support.ledger import state
from tests.support.limited_actors import charge_limited, hold_slot_and_hang, sms_limited
from tests.support.waiting import wait_until

ACTORS = ("actors", "tests.support.limited_actors")


def _states(actor: str) -> dict[str, int]:
    with session_scope() as s:
        return dict(
            s.execute(
                text("SELECT state, count(*) FROM job_ledger WHERE actor = :a GROUP BY state"),
                {"a": actor},
            ).all()
        )


def test_a_concurrency_limit_of_4_is_never_exceeded_by_2_processes_of_8_threads(
    start_worker, stand_ins
):
    # Given a payment provider whose every call takes 100 ms, and 2 x 8 worker threads
    payments = stand_ins["payments"]
    payments.set_faults(mode="slow", delay_s=0.1, paths=["/v1/charges"])
    start_worker(*ACTORS, processes=2, threads=8, env={"SHOPJOBS_PAYMENT_CONCURRENCY": "4"})

    # When 200 jobs each charge once
    ids = [charge_limited.send(n).message_id for n in range(1, 201)]
    wait_until(lambda: _states("tests.charge_limited").get("succeeded") == 200, timeout=120)

    # Then the provider saw 200 charges and never more than 4 calls at once, and the limit bit:
    # the 16 threads did want more than 4 at once (jobs waited on the slots)
    load = payments.concurrency()
    assert len(payments.ledger()["charges"]) == 200
    assert load["peak"] == 4
    assert all(state(mid) == "succeeded" for mid in ids)
    with session_scope() as s:
        slots = s.execute(
            text("SELECT count(*), count(holder) FROM job_limit_slots WHERE key = 'payments'")
        ).one()
    assert tuple(slots) == (4, 0)  # every slot made, every one freed


def test_a_killed_holders_slot_is_free_again_within_its_lease(start_worker, tmp_path):
    # Given a job holding the only slot of a key (lease 4 s), hanging in its worker
    worker = start_worker(*ACTORS, processes=1, threads=2)
    marker = tmp_path / "holding"
    hold_slot_and_hang.send("tests.lease", 4000, str(marker))
    wait_until(marker.exists, timeout=30)
    limit = ConcurrencyLimit("tests.lease", 1, lease_ms=4000, wait_ms=0)
    assert limit.acquire() is None  # held

    # When its worker process is killed (it never releases the slot)
    killed_at = time.monotonic()
    worker.kill_worker_process()

    # Then the slot is still taken at first, and free once the lease runs out
    assert limit.acquire() is None
    leased = wait_until(limit.acquire, timeout=4 + 5, interval=0.1)
    freed_after = time.monotonic() - killed_at
    slot, holder = leased
    limit.release(slot, holder)
    assert freed_after <= 4 + 5
    with pytest.raises(LimitExceeded), limit.hold(), limit.hold():
        pass  # the second hold finds the one slot taken by the first


def test_a_waiter_frees_the_slot_of_a_killed_holder_on_its_host_before_the_lease_ends(
    start_worker, tmp_path
):
    # Given a job holding the only slot of a key for a 120 s lease, hanging in its worker
    worker = start_worker(*ACTORS, processes=1, threads=2)
    marker = tmp_path / "holding"
    hold_slot_and_hang.send("tests.dead-holder", 120_000, str(marker))
    wait_until(marker.exists, timeout=30)

    # When its worker process is killed: the slot stays leased to the dead holder
    worker.kill_worker_process()
    limit = ConcurrencyLimit("tests.dead-holder", 1, lease_ms=120_000, wait_ms=20_000)
    assert limit.acquire() is None

    # Then a waiter on the same host finds the holder's process gone and gets the slot within
    # its 20 s wait, long before the 120 s lease would have freed it
    with limit.hold() as slot:
        assert slot == 1
    with session_scope() as s:
        holders = s.scalar(
            text("SELECT count(holder) FROM job_limit_slots WHERE key = 'tests.dead-holder'")
        )
    assert holders == 0


def _sms_arrivals(start_worker, rate: int, jobs: int) -> tuple[float, list[float]]:
    """Send ``jobs`` SMS jobs through 2 x 8 worker threads limited to ``rate`` per second;
    the time the first was sent, and the gateway's arrival time of each SMS, sorted."""
    gateway = start_sms_stand_in()
    try:
        start_worker(
            *ACTORS,
            processes=2,
            threads=8,
            env={"SHOPJOBS_SMS_URL": gateway.url, "SHOPJOBS_SMS_RATE_PER_S": str(rate)},
        )
        sent_at = time.time()  # before any token was taken (the gateway's clock is the same)
        for n in range(jobs):
            sms_limited.send(n)
        wait_until(
            lambda: _states("tests.sms_limited").get("succeeded") == jobs, timeout=30 + jobs / 5
        )
        return sent_at, sorted(gateway.concurrency()["arrivals"])
    finally:
        gateway.stop()


def _most_within(arrivals: list[float], seconds: float) -> int:
    return max(
        sum(1 for t in arrivals[i:] if t < start + seconds) for i, start in enumerate(arrivals)
    )


def test_a_rate_of_50_per_second_sends_at_most_550_in_any_10_seconds(start_worker, clean):
    # Given workers sending through the shop's SMS client at 50/s (burst 50)
    # When 800 SMS jobs are sent at once
    sent_at, arrivals = _sms_arrivals(start_worker, 50, 800)

    # Then every SMS went out once, and no 10 s window saw more than 50 + 50 x 10 of them, and
    # the whole run took at least the time the bucket allows
    assert len(arrivals) == 800
    assert _most_within(arrivals, 10) <= 550
    assert arrivals[-1] - sent_at >= (800 - 50) / 50


def test_a_rate_below_what_the_workers_can_do_holds_them_back(start_worker, clean):
    # Given workers that could send far more than 5 SMS per second, limited to 5/s (burst 5)
    # When 40 SMS jobs are sent at once
    sent_at, arrivals = _sms_arrivals(start_worker, 5, 40)

    # Then the limit bit: the last SMS arrived at least (40 - 5) / 5 = 7 s after the jobs were
    # sent, where unlimited workers send 40 in well under a second. Measured from the send, not
    # from the first arrival: on a loaded machine a request reaches the gateway up to a second
    # or so after its token, and a late first arrival shortened the span (6.4 s seen in a run);
    # a late arrival can only make the last one later still.
    assert len(arrivals) == 40
    assert arrivals[-1] - sent_at >= (40 - 5) / 5


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda: ConcurrencyLimit("payments", 0), "at least 1"),
        (lambda: ConcurrencyLimit("payments", -3), "at least 1"),
        (lambda: ConcurrencyLimit("k" * 201, 4), "1 to 200"),
        (lambda: RateLimit("sms", 0), "above 0"),
        (lambda: RateLimit("sms", -50), "above 0"),
        (lambda: RateLimit("sms", float("nan")), "above 0"),
        (lambda: RateLimit("sms", 50, burst=0), "burst"),
    ],
)
def test_a_limit_of_0_or_a_negative_rate_is_refused_before_anything_is_written(clean, make, error):
    with pytest.raises(InvalidSend, match=error):
        make()
    with session_scope() as s:
        written = s.execute(
            text(
                "SELECT (SELECT count(*) FROM job_limit_slots) + (SELECT count(*) FROM job_rate_buckets)"
            )
        ).scalar_one()
    assert written == 0


@pytest.mark.parametrize(
    "variable",
    ["SHOPJOBS_PAYMENT_CONCURRENCY", "SHOPJOBS_WAREHOUSE_CONCURRENCY", "SHOPJOBS_SMS_RATE_PER_S"],
)
@pytest.mark.parametrize("value", ["0", "-5"])
def test_limits_in_the_settings_refuse_0_and_negatives_naming_the_variable(variable, value):
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env({variable: value})


def test_a_rate_limit_waits_for_its_token_then_raises_past_its_wait(clean):
    # Given a bucket of 2 tokens refilled at 2 per second
    limit = RateLimit("tests.rate", 2, wait_ms=0)
    limit.take()
    limit.take()
    # When a third take may not wait, it is refused; one that may wait gets the next token
    with pytest.raises(LimitExceeded, match="tests.rate"):
        limit.take()
    RateLimit("tests.rate", 2, wait_ms=2000).take()


def test_a_concurrency_limit_whose_rows_vanished_makes_them_again_without_waiting(
    clean, owner_engine
):
    # Given a limit of 1 whose slot row this process made, held now (lease a minute)
    limit = ConcurrencyLimit("tests.vanishing", 1, lease_ms=60_000, wait_ms=0)
    with limit.hold():
        # When the table is cleared under the holder (a TRUNCATE, as the tests' clean fixture does)
        with owner_engine.begin() as conn:
            conn.execute(text("TRUNCATE job_limit_slots"))
            assert conn.execute(text("SELECT count(*) FROM job_limit_slots")).scalar_one() == 0
        # Then the next taker, which may not wait at all, gets the slot made again at once
        # rather than waiting out a lease nobody holds any more
        with limit.hold() as slot:
            assert slot == 1
            with session_scope() as s:
                held = s.execute(
                    text("SELECT count(holder) FROM job_limit_slots WHERE key = 'tests.vanishing'")
                ).scalar_one()
            assert held == 1
    # and the first holder's release did not free the second's slot by mistake
    with session_scope() as s:
        rows = s.execute(
            text(
                "SELECT count(*), count(holder) FROM job_limit_slots WHERE key = 'tests.vanishing'"
            )
        ).one()
    assert tuple(rows) == (1, 0)
