"""The outbox relay's publish rate against Dramatiq's confirmed ``enqueue``, in the same run.

Dramatiq's ``RabbitmqBroker.enqueue`` with confirms waits for each message's confirm (one round
trip per message). The relay (``jobcore.relay``) publishes a batch of outbox rows with
``mandatory`` and collects the confirms asynchronously, then deletes the rows: its rate here
includes the ``SELECT ... FOR UPDATE SKIP LOCKED`` and the ``DELETE`` of every batch. Rounds
alternate; each checks that the queue received exactly N messages.

usage: python -m bench.relay_rate [--n 20000] [--rounds 3] [--batch 500]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=500)
    a = ap.parse_args()
    os.environ["SHOPJOBS_DATABASE_URL"] = DB_URL
    os.environ.setdefault("SHOPJOBS_LOG_LEVEL", "WARNING")
    from shop import dbadmin

    dbadmin.create_database(DB_URL)
    dbadmin.migrate(DB_URL)
    import broker

    url = broker.settings.amqp_url
    broker.broker.declare_queue(QUEUE, ensure=True)
    ours, theirs = [], []
    for _ in range(a.rounds):
        _purge(url)
        theirs.append(round(dramatiq_enqueue(broker.broker, a.n)))
        assert _depth(url) == a.n, "Dramatiq's enqueue lost messages"
        _purge(url)
        ours.append(round(relay(broker.settings, broker.broker, a.n, a.batch)))
        got = _depth(url)
        assert got == a.n, f"the relay lost or doubled messages: {got} in the queue"
        _purge(url)
    o, t = statistics.median(ours), statistics.median(theirs)
    print(f"SUMMARY dramatiq_confirmed_enqueue msgs_per_s median={t:.0f} runs={theirs}")
    print(f"SUMMARY relay_async_confirms batch={a.batch} msgs_per_s median={o:.0f} runs={ours}")
    print(f"RATIO relay/dramatiq of medians = {o / t:.1f} (goal >= 5)")


if __name__ == "__main__":
    main()
