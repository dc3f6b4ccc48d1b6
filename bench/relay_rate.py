"""A service's sends through the outbox and the relay against Dramatiq's confirmed ``enqueue``.

Dramatiq's ``RabbitmqBroker.enqueue`` with confirms waits for each message's confirm (one round
trip per message). The service here sends N messages with ``jobcore.outbox.enqueue(session,
name, ...)`` in transactions of ``--per-tx`` messages (a campaign chunk's shape; ``--per-tx 1``
is one send per business transaction) from ``--senders`` threads, while the process's relay
(``jobcore.relay``, installed with ``outbox.relay_sends_with``) publishes the committed rows
with asynchronous confirms and deletes them. Timed from the start of the first transaction to
the relay's last confirm (the issue's "first commit to last confirm", plus the first
transaction's own inserts). Also printed: the relay alone on N rows committed beforehand.
Rounds alternate; each checks that the queue received exactly N messages.

usage: python -m bench.relay_rate [--n 20000] [--rounds 3] [--batch 500] [--per-tx 100]
                                  [--senders 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time

DB_URL = os.environ.get(
    "BENCH_RELAY_DB", "postgresql+psycopg2://postgres@127.0.0.1:5432/shopjobs_bench_relay"
)
QUEUE = "bench_relay"


def _depth(channel_url: str) -> int:
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(channel_url))
    try:
        return int(conn.channel().queue_declare(QUEUE, passive=True).method.message_count)
    finally:
        conn.close()


def _purge(channel_url: str) -> None:
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(channel_url))
    try:
        conn.channel().queue_purge(QUEUE)
    finally:
        conn.close()


def _messages(n: int) -> list[object]:
    from dramatiq import Message

    return [
        Message(
            queue_name=QUEUE,
            actor_name="bench.noop",
            args=(i, "order.confirmation"),
            kwargs={},
            options={},
        )
        for i in range(n)
    ]


def dramatiq_enqueue(broker: object, n: int) -> float:
    """Dramatiq's own confirmed enqueue, one message after the other."""
    messages = _messages(n)
    t0 = time.perf_counter()
    for message in messages:
        broker.enqueue(message)  # type: ignore[attr-defined]
    return n / (time.perf_counter() - t0)


def relay(settings: object, broker: object, n: int, batch: int) -> float:
    """N committed outbox rows (due now), then one relay publishing them all."""
    import psycopg2

    from jobcore.relay import Publisher, Relay, connect_psycopg

    rows = json.dumps(
        [{"message_id": m.message_id, "body": m.encode().decode()} for m in _messages(n)]
    )
    dsn = DB_URL.replace("+psycopg2", "")
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO outbox (message_id, queue, body, due_at) SELECT v.message_id, %s,"
            " convert_to(v.body, 'UTF8'), now() FROM json_to_recordset(%s::json)"
            " AS v(message_id text, body text)",
            (QUEUE, rows),
        )
    publisher = Publisher(settings.amqp_url, lambda q: broker.declare_queue(q, ensure=True))  # type: ignore[attr-defined]
    worker = Relay(connect_psycopg(dsn), publisher, batch=batch)
    t0 = time.perf_counter()
    published = 0
    while (done := worker.run_once()) > 0:
        published += done
    rate = published / (time.perf_counter() - t0)
    worker.stop()
    assert published == n, f"relay published {published} of {n}"
    return rate


ACTOR = "bench.relay_noop"


def service(
    settings: object, broker: object, n: int, batch: int, per_tx: int, senders: int
) -> float:
    """N sends committed by a service through the outbox; the relay publishes them."""
    import psycopg2

    from jobcore import outbox
    from jobcore.db import session_scope
    from jobcore.relay import Publisher, Relay, connect_psycopg

    dsn = DB_URL.replace("+psycopg2", "")
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("TRUNCATE outbox")  # the bench's own database: rows of an aborted run
    publisher = Publisher(settings.amqp_url, lambda q: broker.declare_queue(q, ensure=True))  # type: ignore[attr-defined]
    relay = Relay(connect_psycopg(dsn), publisher, batch=batch, poll_s=0.5).start()
    outbox.relay_sends_with(relay)
    share = n // senders

    def send(first: int) -> None:
        for start in range(first, first + share, per_tx):
            with session_scope() as s:
                for i in range(start, min(start + per_tx, first + share)):
                    outbox.enqueue(s, ACTOR, i, "order.confirmation")

    threads = [threading.Thread(target=send, args=(k * share,)) for k in range(senders)]
    t0 = time.perf_counter()
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        committed = time.perf_counter() - t0
        deadline = time.monotonic() + 120
        while relay.published < share * senders and time.monotonic() < deadline:
            time.sleep(0.001)
        elapsed = time.perf_counter() - t0
    finally:
        outbox.relay_sends_with(None)
        relay.stop()
    assert relay.published == share * senders, f"relay published {relay.published} of {n}"
    print(
        f"RESULT name=outbox_service_relay n={share * senders} per_tx={per_tx} senders={senders}"
        f" commits_s={committed:.2f} last_confirm_s={elapsed:.2f}"
        f" msgs_per_s={share * senders / elapsed:.0f}",
        flush=True,
    )
    return share * senders / elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--per-tx", type=int, default=100)
    ap.add_argument("--senders", type=int, default=1)
    a = ap.parse_args()
    os.environ["SHOPJOBS_DATABASE_URL"] = DB_URL
    os.environ.setdefault("SHOPJOBS_LOG_LEVEL", "WARNING")
    from shop import dbadmin

    dbadmin.create_database(DB_URL)
    dbadmin.migrate(DB_URL)
    import dramatiq

    import broker

    @dramatiq.actor(actor_name=ACTOR, queue_name=QUEUE)
    def relay_noop(order_id: int, kind: str) -> None:
        """The actor the service sends to (never run here: the bench only publishes)."""

    url = broker.settings.amqp_url
    broker.broker.declare_queue(QUEUE, ensure=True)
    ours, theirs, alone = [], [], []
    for _ in range(a.rounds):
        _purge(url)
        theirs.append(round(dramatiq_enqueue(broker.broker, a.n)))
        assert _depth(url) == a.n, "Dramatiq's enqueue lost messages"
        _purge(url)
        ours.append(
            round(service(broker.settings, broker.broker, a.n, a.batch, a.per_tx, a.senders))
        )
        got = _depth(url)
        assert got == a.n, f"the outbox and relay lost or doubled messages: {got} in the queue"
        _purge(url)
        alone.append(round(relay(broker.settings, broker.broker, a.n, a.batch)))
        got = _depth(url)
        assert got == a.n, f"the relay lost or doubled messages: {got} in the queue"
        _purge(url)
    o, t, r = statistics.median(ours), statistics.median(theirs), statistics.median(alone)
    print(f"SUMMARY dramatiq_confirmed_enqueue msgs_per_s median={t:.0f} runs={theirs}")
    print(
        f"SUMMARY outbox_service_relay per_tx={a.per_tx} senders={a.senders}"
        f" msgs_per_s median={o:.0f} runs={ours}"
    )
    print(f"SUMMARY relay_alone batch={a.batch} msgs_per_s median={r:.0f} runs={alone}")
    print(f"RATIO outbox+relay/dramatiq of medians = {o / t:.1f} (goal >= 5)")
    print(f"RATIO relay alone/dramatiq of medians = {r / t:.1f}")


if __name__ == "__main__":
    main()
