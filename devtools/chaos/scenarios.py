"""The catalogue's rows as scenarios: make orders, inject the row's fault, drain, audit.

Each function takes the harness and a size and returns an ``Outcome`` (the soak prints it, a
chaos test asserts on it). ``ROWS`` lists them by catalogue number. A scenario kills only the
processes it started; the machine's RabbitMQ and PostgreSQL come back before it returns.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import dramatiq
from sqlalchemy import func, select

from devtools import faults
from devtools.chaos import load as shop_load
from devtools.chaos.harness import Harness, Outcome, at_progress, ledger_count, when
from devtools.chaos.load import Load
from jobcore.db import session_scope
from jobcore.models import DeadLetter, LedgerEntry, OutboxMessage

_pause = threading.Event()
# realistic retry pacing for the workers of a chaos run: a restart of a few seconds is ridden out
BACKOFF = {"SHOPJOBS_MIN_BACKOFF_MS": "1000", "SHOPJOBS_MAX_BACKOFF_MS": "8000"}


def _start(
    h: Harness, name: str, orders: int, env: dict[str, str] | None = None, **kwargs: Any
) -> tuple[Load, Any, list[int]]:
    load = Load()
    products = shop_load.catalogue(load, h.rng)
    worker = h.workers(name, env={**BACKOFF, **(env or {})}, **kwargs)
    return load, worker, products


def kill_worker_processes(h: Harness, orders: int, kills: int = 4) -> Outcome:
    """T1: SIGKILL a worker process, again and again, under load."""
    load, worker, products = _start(h, "t1", orders)
    shop_load.orders(load, h.rng, orders, products)
    replaced_in: list[float] = []
    last = time.monotonic()
    for k in range(kills):
        at_progress(load, (k + 1) / (kills + 2))
        _settled(worker)  # independent kills: the last one's suspects have run alone
        victim = worker.kill_worker_process(k % h.processes)
        last = time.monotonic()
        worker.wait_replaced(victim)
        replaced_in.append(round(time.monotonic() - last, 1))
    evidence = {"kills": kills, "replaced_in_s": replaced_in}
    return h.finish(
        "T1", "kill -9 a worker process, repeatedly", load, kills, evidence, last, worker
    )


def _settled(worker: Any, quiet_s: float = 3.0, timeout: float = 120) -> None:
    """Wait until the last kill's suspects ran alone: no lone run under way, and no new suspect
    logged for ``quiet_s``. Kills that land on two lone runs of the same innocent suspect make
    CrashGuard park it as the culprit (see "Dead letters and replays" in the README)."""
    from sqlalchemy import text

    deadline = time.monotonic() + timeout
    seen, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        with session_scope() as s:
            lone = s.scalar(
                text("SELECT count(*) FROM crash_suspects WHERE running_since IS NOT NULL")
            )
        suspects = worker.log().count("crash suspect")
        if suspects != seen or lone:
            seen, since = suspects, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return
        _pause.wait(0.2)


def crash_points(
    h: Harness,
    orders: int,
    point: str,
    budget: int = 3,
    every: int = 7,
    extra_env: dict[str, str] | None = None,
) -> Outcome:
    """T2: a worker process SIGKILLs itself at a named point, ``budget`` times."""
    log = os.path.join(h.log_dir, f"t2-{point}-{uuid.uuid4().hex[:6]}.kills")
    env = {
        "SHOPJOBS_CHAOS_CRASH_AT": point,
        "SHOPJOBS_CHAOS_CRASH_BUDGET": str(budget),
        "SHOPJOBS_CHAOS_CRASH_EVERY": str(every),
        "SHOPJOBS_CHAOS_CRASH_LOG": log,
        **(extra_env or {}),
    }
    load, worker, products = _start(h, f"t2-{point}", orders, env=env)
    shop_load.orders(load, h.rng, orders, products)
    at_progress(load, 0.99, timeout=h.drain_timeout_s)
    kills = _lines(log)
    # a relay killed after RabbitMQ confirmed its batch leaves the rows: the batch goes out twice
    republished = sum(int(line.split()[2]) for line in kills if len(line.split()) > 2)
    evidence = {"point": point, "kills": len(kills), "republished": republished}
    return h.finish(
        "T2", f"kill -9 at {point}", load, len(kills), evidence, time.monotonic(), worker
    )


def _lines(path: str) -> list[str]:
    try:
        with open(path) as fh:
            return fh.read().splitlines()
    except FileNotFoundError:
        return []


def broker_outages(h: Harness, orders: int, outages: int = 2, outage_s: float = 5) -> Outcome:
    """T3/T24: RabbitMQ stopped and started while orders flow and new ones come in; then its
    connections closed. Services keep taking orders meanwhile (the outbox holds them)."""
    load, worker, products = _start(h, "t3", orders)
    per_wave = orders // (outages + 2)
    shop_load.orders(load, h.rng, per_wave, products)
    outbox_seen, resumed_in = 0, []
    last = time.monotonic()
    for _ in range(outages):
        at_progress(load, 0.5 * len(load.order_ids) / orders)
        with faults.rabbitmq_stopped():
            shop_load.orders(load, h.rng, per_wave, products)  # the shop keeps selling
            outbox_seen = max(outbox_seen, _outbox_rows())
            _pause.wait(outage_s)
        last = time.monotonic()
        resumed_in.append(_resumed_after(last))
    closed = faults.close_connections(_vhost())
    shop_load.orders(load, h.rng, orders - len(load.order_ids), products)
    evidence = {
        "outages": outages,
        "outbox_rows_during_outage": outbox_seen,
        "consumers_resumed_in_s": resumed_in,
        "connections_closed": closed,
        "consumer_restarts": worker.log().count("Restarting consumer"),
    }
    return h.finish(
        "T3",
        f"broker stopped {outage_s:.0f}s x{outages} + connections closed",
        load,
        outages + 1,
        evidence,
        last,
        worker,
    )


def _vhost() -> str:
    from urllib.parse import unquote, urlparse

    return unquote(urlparse(os.environ["SHOPJOBS_AMQP_URL"]).path.lstrip("/")) or "/"


def _outbox_rows() -> int:
    with session_scope() as s:
        return int(s.scalar(select(func.count()).select_from(OutboxMessage)) or 0)


def _resumed_after(up_at: float, timeout: float = 60) -> float | None:
    """Seconds from the broker's return until a worker starts a job again (None: never)."""
    from datetime import UTC, datetime, timedelta

    since = datetime.now(UTC) - timedelta(seconds=time.monotonic() - up_at)
    try:
        when(
            lambda: ledger_count_since(since) > 0,
            timeout,
            "a job started after the broker came back",
        )
    except TimeoutError:
        return None
    return round(time.monotonic() - up_at, 1)


def ledger_count_since(since: Any) -> int:
    try:
        with session_scope() as s:
            return int(
                s.scalar(
                    select(func.count())
                    .select_from(LedgerEntry)
                    .where(LedgerEntry.started_at > since)
                )
                or 0
            )
    except Exception:  # noqa: BLE001  (polled again)
        return 0


def postgres_faults(h: Harness, orders: int, database: str, stop_s: float = 0) -> Outcome:
    """T4: the workers' sessions terminated, PostgreSQL restarted (fast), crashed (immediate),
    and with ``stop_s`` stopped that long."""
    load, worker, products = _start(h, "t4", orders)
    shop_load.orders(load, h.rng, orders, products)
    at_progress(load, 0.15)
    terminated = faults.terminate_sessions(database)
    at_progress(load, 0.35)
    away = [round(faults.restart_postgres("fast"), 1)]
    at_progress(load, 0.55)
    away.append(round(faults.restart_postgres("immediate"), 1))
    if stop_s:
        at_progress(load, 0.7)
        away.append(round(faults.stop_postgres_for(stop_s), 1))
    last = time.monotonic()
    evidence = {
        "sessions_terminated": terminated,
        "away_s": away,
        "db_errors_in_worker_log": _db_errors(worker.log()),
    }
    outcome = h.finish(
        "T4",
        "PostgreSQL sessions killed, restart, crash" + (f", {stop_s:.0f}s down" if stop_s else ""),
        load,
        2 + (1 if stop_s else 0) + (1 if terminated else 0),
        evidence,
        last,
        worker,
    )
    outcome.evidence["exhausted_by_outage"] = (
        ledger_count(state=["failed", "dead"]) and _exhausted_by_outage()
    )
    return outcome


def _db_errors(log: str) -> int:
    return sum(
        log.count(s) for s in ("OperationalError", "InterfaceError", "server closed the connection")
    )


def _exhausted_by_outage() -> int:
    with session_scope() as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(LedgerEntry)
                .where(
                    LedgerEntry.state.in_(("failed", "dead")),
                    LedgerEntry.error.op("~*")("OperationalError|InterfaceError|connection"),
                )
            )
            or 0
        )


def poison_messages(h: Harness, orders: int, poisons: int = 5) -> Outcome:
    """T7: messages that always raise, among the orders."""
    from devtools.chaos.actors import poison

    load, worker, products = _start(h, "t7", orders)
    shop_load.orders(load, h.rng, orders // 2, products)
    ids = [poison.send(n).message_id for n in range(poisons)]
    shop_load.orders(load, h.rng, orders - orders // 2, products)
    when(
        lambda: ledger_count(message_id=ids, state="failed") == poisons,
        h.drain_timeout_s,
        "poisons failed",
    )

    def parked() -> int:
        with session_scope() as s:
            return (
                s.scalar(
                    select(func.count())
                    .select_from(DeadLetter)
                    .where(DeadLetter.message_id.in_(ids))
                )
                or 0
            )

    # the dead letter is stored by the consumer thread's nack, beside the ledger's commit of
    # 'failed', in either order: give it a moment, then count what is there
    with contextlib.suppress(TimeoutError):
        when(lambda: parked() >= poisons, 15, "poisons dead-lettered")
    with session_scope() as s:
        attempts = sorted(
            s.scalars(select(LedgerEntry.attempts).where(LedgerEntry.message_id.in_(ids)))
        )
    evidence = {
        "poisons": poisons,
        "attempts": attempts,
        "dead_letters": parked(),
        "max_retries": poison.options["max_retries"],
    }
    return h.finish(
        "T7", "poison messages (always raise)", load, poisons, evidence, time.monotonic(), worker
    )


def crash_poison(
    h: Harness, orders: int, poisons: int = 1, env: dict[str, str] | None = None
) -> Outcome:
    """T8: messages that kill their worker process every time they run (``env``: the workers'
    own, e.g. a cluster's quorum queues)."""
    from devtools.chaos.actors import crash_poison as culprit

    load, worker, products = _start(h, "t8", orders, env=env)
    runs = [os.path.join(h.log_dir, f"t8-{uuid.uuid4().hex[:8]}.runs") for _ in range(poisons)]
    shop_load.orders(load, h.rng, orders // 2, products)
    # through the process's current broker, not the one the actor was bound to at import: a
    # cluster run publishes to the cluster (devtools.chaos.cluster.publishing_to)
    broker = dramatiq.get_broker()
    ids = [broker.enqueue(culprit.message(path)).message_id for path in runs]
    shop_load.orders(load, h.rng, orders - orders // 2, products)
    when(
        lambda: ledger_count(message_id=ids, state="dead") == poisons,
        h.drain_timeout_s,
        "culprits parked",
    )

    def crashed() -> dict[str | None, str]:
        with session_scope() as s:
            rows = s.execute(
                select(DeadLetter.message_id, DeadLetter.reason).where(
                    DeadLetter.reason == "crashed_worker"
                )
            ).all()
        return {message_id: reason for message_id, reason in rows}

    # the dead letter is stored by the nack, beside the ledger's commit of 'dead' (as in T7)
    with contextlib.suppress(TimeoutError):
        when(lambda: set(ids) <= set(crashed()), 15, "culprits dead-lettered")
    parked = crashed()
    evidence = {
        "poisons": poisons,
        "runs_per_poison": [len(_lines(p)) for p in runs],
        "parked_culprits": sum(1 for m in ids if parked.get(m) == "crashed_worker"),
        "bystanders_parked": sum(1 for m in parked if m not in ids),
    }
    return h.finish(
        "T8", "crash poison (kills its worker)", load, poisons, evidence, time.monotonic(), worker
    )


def duplicate_delivery(h: Harness, orders: int) -> Outcome:
    """T12: every message published twice; then finished messages published again."""
    load, worker, products = _start(h, "t12", orders, env={"SHOPJOBS_CHAOS_DUPLICATE": "1"})
    shop_load.orders(load, h.rng, orders, products)
    at_progress(load, 1.0, timeout=h.drain_timeout_s)
    republished = _republish_finished(min(200, orders))
    when(lambda: _duplicates() >= republished, 60, "republished copies skipped")
    with session_scope() as s:
        messages = s.scalar(select(func.count()).select_from(LedgerEntry))
    messages = messages or 0
    evidence = {
        "messages": messages,
        "republished_old": republished,
        "duplicates_skipped": _duplicates(),
    }
    return h.finish(
        "T12",
        "every message twice + old ones again",
        load,
        messages + republished,
        evidence,
        time.monotonic(),
        worker,
    )


def _duplicates() -> int:
    with session_scope() as s:
        return int(s.scalar(select(func.coalesce(func.sum(LedgerEntry.duplicates), 0))) or 0)


def _republish_finished(limit: int) -> int:
    """Publish finished pipeline-start messages again, as a relay that re-ran would: the same
    id and options, the ledger row already written (``ledger_recorded``)."""
    import dramatiq

    from jobcore.outbox import LEDGER_RECORDED_OPTION
    from jobcore.routing import routes

    with session_scope() as s:
        rows = s.execute(
            select(LedgerEntry.message_id, LedgerEntry.order_id)
            .where(
                LedgerEntry.actor == "orders.process_order_async", LedgerEntry.state == "succeeded"
            )
            .limit(limit)
        ).all()
    broker = dramatiq.get_broker()
    for message_id, order_id in rows:
        options: dict[str, Any] = {LEDGER_RECORDED_OPTION: True}
        message = routes().message("orders.process_order_async", (order_id,), None, **options)
        broker.enqueue(message.copy(message_id=message_id))
    return len(rows)


def relay_faults(h: Harness, orders: int, kills: int = 3) -> Outcome:
    """T23: outbox rows left for the relay; relays killed mid-run, and two relays at once."""
    load, worker, products = _start(h, "t23", orders, env={"SHOPJOBS_OUTBOX_RELAY_AFTER_S": "1"})
    with faults.rabbitmq_stopped():  # the shop keeps selling: every order waits in the outbox
        shop_load.orders(load, h.rng, orders, products)
        # counted before the broker is back: the workers' relays publish due rows at once
        left = _outbox_rows()
    killed = 0
    for _ in range(kills):
        for _ in range(2):  # two relays at once
            _send_relay()
        if _outbox_rows():
            pid = worker.kill_worker_process()
            killed += 1
            worker.wait_replaced(pid)
    for _ in range(2):
        _send_relay()
    last = time.monotonic()
    evidence = {"outbox_rows": left, "relays_sent": 2 * kills + 2, "workers_killed": killed}
    return h.finish(
        "T23",
        "relay killed repeatedly, two at once",
        load,
        killed + kills,
        evidence,
        last,
        worker,
        relay=False,
    )


def _send_relay() -> None:
    import dramatiq

    from jobcore.routing import routes

    dramatiq.get_broker().enqueue(routes().message("maintenance.relay_outbox", ()))


def oversell(h: Harness, orders: int, stock: int) -> Outcome:
    """T25: more orders than stock for one product, all at once."""
    load = Load()
    products = shop_load.catalogue(load, h.rng, products=1, scarce=stock)
    worker = h.workers("t25", env=BACKOFF)
    shop_load.orders(load, h.rng, orders, products, declined=0.0, quantity=1)
    evidence = {"stock": stock}
    outcome = h.finish(
        "T25",
        f"oversell: {orders} orders for {stock} in stock",
        load,
        orders - stock,
        evidence,
        time.monotonic(),
        worker,
    )
    outcome.evidence["reserved"] = outcome.audit.statuses["completed"]
    return outcome


def sigterm_group(h: Harness, orders: int, stops: int = 3) -> Outcome:
    """T26: SIGTERM to the whole worker group under load, again and again (a deploy)."""
    load = Load()
    products = shop_load.catalogue(load, h.rng)
    worker = h.workers("t26-0", env=BACKOFF, shutdown_timeout_ms=3000)
    shop_load.orders(load, h.rng, orders, products)
    codes, handed_back = [], 0
    last = time.monotonic()
    for n in range(stops):
        at_progress(load, (n + 1) / (stops + 2))
        codes.append(worker.stop(timeout=60))
        handed_back += worker.log().count("requeue")
        last = time.monotonic()
        worker = h.workers(f"t26-{n + 1}", env=BACKOFF, shutdown_timeout_ms=3000)
    evidence = {"stops": stops, "exit_codes": codes}
    return h.finish("T26", "SIGTERM to the group, repeatedly", load, stops, evidence, last, worker)


ROWS: dict[str, Callable[..., Outcome]] = {
    "T1": kill_worker_processes,
    "T2": crash_points,
    "T3": broker_outages,
    "T4": postgres_faults,
    "T7": poison_messages,
    "T8": crash_poison,
    "T12": duplicate_delivery,
    "T23": relay_faults,
    "T25": oversell,
    "T26": sigterm_group,
}


def provider_faults(h: Harness, orders: int, phase_s: float = 4) -> Outcome:
    """T17: the payment provider times out, answers 5xx and 429 Retry-After, hangs, charges
    then times out, and resets connections (the fault proxy), in turn, while orders pay."""
    from urllib.parse import urlsplit

    from devtools.chaos.proxy import FaultProxy

    upstream = urlsplit(h.payments.url)
    proxy = FaultProxy((upstream.hostname or "127.0.0.1", upstream.port or 80)).start()
    host, port = proxy.address
    try:
        load, worker, products = _start(
            h,
            "t17",
            orders,
            env={"SHOPJOBS_PAYMENT_URL": f"http://{host}:{port}", "SHOPJOBS_HTTP_TIMEOUT_S": "1"},
        )
        shop_load.orders(load, h.rng, orders, products)
        modes = [
            {"mode": "http_503", "rate": 0.3},
            {"mode": "rate_limit", "rate": 0.3, "retry_after_s": 1},
            {"mode": "timeout_after_charge", "rate": 0.2},
            {"mode": "timeout", "rate": 0.2},
        ]
        for spec in modes:
            h.payments.set_faults(paths=["/v1/charges"], **spec)
            _pause.wait(phase_s)
        h.payments.clear_faults()
        proxy.set_mode("reset")
        _pause.wait(1.5)
        proxy.set_mode("pass")
        last = time.monotonic()
        with session_scope() as s:
            retried = s.scalar(
                select(func.count())
                .select_from(LedgerEntry)
                .where(LedgerEntry.actor == "payments.validate_payment", LedgerEntry.attempts > 1)
            )
        evidence = {
            "fault_modes": [m["mode"] for m in modes] + ["reset"],
            "payment_retries": retried,
            "connections_reset": proxy.resets,
        }
        return h.finish(
            "T17",
            "provider timeouts, 5xx, 429, hangs, resets",
            load,
            len(modes) + 1,
            evidence,
            last,
            worker,
        )
    finally:
        h.payments.clear_faults()
        proxy.stop()


ROWS["T17"] = provider_faults


@contextlib.contextmanager
def selling_with_a_relay() -> Iterator[Any]:
    """This process sells as the shop's service processes do (the workers, the scheduler, the
    webhook endpoint): a commit hands its sends to a relay thread of the process instead of
    publishing them on the committing thread, which a broker alarm would block."""
    import broker
    from jobcore import outbox
    from middleware.outbox_relay import build_relay

    relay = build_relay(broker.settings, broker.broker).start()
    outbox.relay_sends_with(relay)
    try:
        yield relay
    finally:
        outbox.relay_sends_with(None)
        relay.stop()


def broker_alarm(h: Harness, orders: int, alarm_s: float = 8) -> Outcome:
    """T21: RabbitMQ's disk alarm blocks every publisher for ``alarm_s`` while the shop sells."""
    from jobcore.relay import RELAY_FAILURES

    load, worker, products = _start(h, "t21", orders)
    with selling_with_a_relay():
        shop_load.orders(load, h.rng, orders // 2, products)
        failures_before = _relay_failures(RELAY_FAILURES)
        selling = threading.Thread(
            target=shop_load.orders, args=(load, h.rng, 10, products), daemon=True
        )
        with faults.disk_alarm():
            started = time.monotonic()
            selling.start()
            selling.join(alarm_s)
            blocked = selling.is_alive()
            _pause.wait(max(0.0, alarm_s - (time.monotonic() - started)))  # the alarm's length
            waiting = _outbox_rows()  # sold and committed, not published: the alarm bit
        selling.join(120)
        services_s = round(time.monotonic() - started, 1)
        shop_load.orders(load, h.rng, orders - len(load.order_ids), products)
    evidence = {
        "alarm_s": alarm_s,
        "ten_orders_took_s": services_s,
        "sales_blocked_by_alarm": blocked,
        "outbox_rows_during_alarm": waiting,
        "relay_failed_rounds": _relay_failures(RELAY_FAILURES) - failures_before,
    }
    return h.finish(
        "T21", f"broker disk alarm {alarm_s:.0f}s", load, 1, evidence, time.monotonic(), worker
    )


def _relay_failures(counter: Any) -> float:
    return sum(
        sample.value
        for metric in counter.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    )


def queue_deleted(
    h: Harness, orders: int, redrive_after_s: float = 3.0, accounted_within_s: float = 120.0
) -> Outcome:
    """T22: a work queue deleted under load. RabbitMQ drops what it held; sends after the delete
    come back (mandatory) and wait in the outbox until the relay redeclared it. The dropped jobs
    strand their orders: the scheduled re-drive, fired here every 2 s with a threshold of
    ``redrive_after_s`` (production: every 5 min, 600 s), sends each one's next step again.
    The shop keeps selling (5 orders every 0.5 s) until the re-drive has accounted for as many
    lost jobs as the delete dropped, or ``accounted_within_s``: the losses are found while the
    queue keeps flowing, not once the traffic stopped."""
    # one prefetched message per thread: the queue keeps a backlog for the delete to drop
    env = {
        "SHOPJOBS_PREFETCH_PER_THREAD": "1",
        "SHOPJOBS_ORDERS_REDRIVE_AFTER_S": f"{redrive_after_s:g}",
    }
    load, worker, products = _start(h, "t22", orders, env=env)
    shop_load.orders(load, h.rng, orders, products)
    when(
        lambda: _ready("orders") >= 10 and ledger_count(state="succeeded") >= 10,
        120,
        "jobs running and a backlog in the orders queue",
    )
    deleted = faults.delete_queue(_vhost(), "orders")
    deleted_at, last = time.time(), time.monotonic()
    evidence: dict[str, Any] = {"deleted": "orders", "messages_deleted": deleted}
    evidence.update(_sell_until_accounted(h, load, products, deleted or 0, accounted_within_s))
    outcome = h.finish(
        "T22",
        "a work queue deleted under load",
        load,
        1,
        evidence,
        last,
        worker,
        while_draining=_every(2.0, _fire_redrive),
    )
    evidence.update(_redriven(deleted_at))
    return outcome


def _sell_until_accounted(
    h: Harness, load: Load, products: list[int], deleted: int, within_s: float, per_tick: int = 5
) -> dict[str, Any]:
    """New orders (``per_tick`` every 0.5 s, more than the workers keep up with: the orders
    queue stays busy) and the scheduled re-drive, until it accounted for ``deleted`` lost jobs:
    how long that took, the orders sold meanwhile, and the orders queue's messages (ready plus
    held by workers, the count a check by queue depth reads) at each re-drive fired."""
    from jobcore import outbox

    started = time.monotonic()
    sold_before = len(load.order_ids)
    depths: list[int] = []

    def fire() -> None:
        depths.append(_ready("orders") + _held("orders"))
        _fire_redrive()

    redrive = _every(2.0, fire)
    accounted = False
    while time.monotonic() - started < within_s:
        shop_load.orders(load, h.rng, per_tick, products)
        with contextlib.suppress(Exception):  # the queue is redeclared meanwhile: poll on
            outbox.relay_pending(2.0)
            redrive()
            if _lost_accounted() >= deleted:
                accounted = True
                break
        _pause.wait(0.5)
    return {
        "accounted_under_load": accounted,
        "accounted_after_s": round(time.monotonic() - started, 1) if accounted else None,
        "orders_sold_while_redriving": len(load.order_ids) - sold_before,
        "orders_queue_messages_at_redrives": depths,
    }


def _held(queue: str) -> int:
    from jobcore.worker_registry import held

    with session_scope() as s:
        return held(s).get(queue, 0)


def _lost_accounted() -> int:
    from jobcore.ledger.lost import LOST

    with session_scope() as s:
        return (
            s.scalar(
                select(func.count()).where(
                    LedgerEntry.state == "dead", LedgerEntry.error.startswith(LOST)
                )
            )
            or 0
        )


def _ready(queue: str) -> int:
    from jobcore.queue_depth import ready

    return ready(os.environ["SHOPJOBS_AMQP_URL"], [queue])[queue]


def _every(period_s: float, fire: Callable[[], None]) -> Callable[[], None]:
    """``fire``, at most once per ``period_s`` however often the result is called."""
    last = [-period_s]

    def maybe() -> None:
        if time.monotonic() - last[0] >= period_s:
            last[0] = time.monotonic()
            fire()

    return maybe


def _fire_redrive() -> None:
    """What the scheduler's ``redrive-stranded-orders`` entry sends."""
    from jobcore import outbox

    with session_scope() as s:
        outbox.enqueue(s, "maintenance.redrive_stranded_orders")


def _redriven(deleted_at: float) -> dict[str, Any]:
    """The lost jobs the re-drive accounted for, their orders, and when the last one was sent."""
    from jobcore.ledger.lost import LOST

    with session_scope() as s:
        jobs, orders, last = s.execute(
            select(
                func.count(),
                func.count(LedgerEntry.order_id.distinct()),
                func.max(LedgerEntry.state_changed_at),
            ).where(LedgerEntry.state == "dead", LedgerEntry.error.startswith(LOST))
        ).one()
    return {
        "lost_jobs_redriven": jobs,
        "orders_redriven": orders,
        "last_redrive_after_s": round(last.timestamp() - deleted_at, 1) if last else None,
    }


ROWS.update({"T21": broker_alarm, "T22": queue_deleted})
