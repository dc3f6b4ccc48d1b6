"""The outbox relay: publishes committed outbox rows when due, deletes each after its confirm.

Which rows: those with ``due_at <= now()`` (a job's sends, committed with its outcome, and
long delays, by the database clock) and stragglers without a due time that their sender's
after-commit publish missed (older than ``straggler_after_s``). One batch is one transaction:
``SELECT ... FOR UPDATE SKIP LOCKED``, publish every row with ``mandatory`` on a confirming
channel without waiting per message (confirms are collected asynchronously, many in flight),
then ``DELETE`` the confirmed rows, mark the held ones' ledger rows ``enqueued`` (they were
``scheduled``) and commit. So several relays (one per worker process, one
in the scheduler) never take the same row, a row is removed only after RabbitMQ confirmed it,
and a crash between the confirm and the commit publishes it again (consumers dedupe). A
returned message (its queue was deleted) makes the relay redeclare the queue; its row stays
for the next round. A broker or database that is down makes the relay back off and retry.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pika
from dramatiq import Message
from dramatiq.common import current_millis, dq_name
from prometheus_client import Counter, Histogram

from jobcore import amqp

logger = logging.getLogger(__name__)

RELAY_PUBLISHED = Counter(
    "shopjobs_relay_published", "Outbox rows the relay published and RabbitMQ confirmed.", ["queue"]
)
RELAY_FAILURES = Counter(
    "shopjobs_relay_failures",
    "Relay rounds that failed (broker or database unavailable, nack, return, timeout).",
    ["reason"],
)
RELAY_LAG = Histogram(
    "shopjobs_relay_lag_seconds",
    "Due time (or commit) until the relay's confirm, per published row.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)

_DUE = """
SELECT id, message_id, queue, body, delay_ms,
    EXTRACT(EPOCH FROM now() - COALESCE(due_at, created_at)) AS lag_s
FROM outbox
WHERE (due_at IS NOT NULL AND due_at <= now())
   OR (due_at IS NULL AND created_at < now() - make_interval(secs => %(straggler_after_s)s))
ORDER BY id
LIMIT %(batch)s
FOR UPDATE SKIP LOCKED
"""


# A held send's ledger row becomes 'enqueued' in the commit that deletes its outbox row. Rows
# are locked in message_id order, as every ledger writer locks them, and a row another
# transaction holds is skipped, not waited for: it is a worker's writer recording the message's
# run (the message outran this commit), a later state than 'enqueued'. Waiting for it in another
# order than the writer's deadlocked, and a relay chosen as the victim rolled back a batch
# RabbitMQ had already confirmed and published it again: CI saw 46 of 100 delayed jobs run twice.
_PUBLISHED = """
UPDATE job_ledger SET state = 'enqueued', state_changed_at = now()
WHERE message_id IN (
    SELECT message_id FROM job_ledger
    WHERE message_id = ANY(%s) AND state = 'scheduled'
    ORDER BY message_id
    FOR UPDATE SKIP LOCKED
)
"""


class Returned(Exception):
    """RabbitMQ returned a message: no queue took it."""


class Publisher:
    """One AMQP connection publishing batches with asynchronous publisher confirms.

    Parameters:
      url: the AMQP URL.
      declare: declares a canonical queue (with its .DQ and .XQ) on the application's broker,
        the same way its consumers do; called for a returned message's queue.
      confirm_timeout_s: how long a batch waits for its confirms.
    """

    def __init__(
        self, url: str, declare: Callable[[str], None], *, confirm_timeout_s: float = 10.0
    ) -> None:
        self.url = url
        self.declare = declare
        self.confirm_timeout_s = confirm_timeout_s
        self._connection: Any = None
        self._channel: Any = None
        self._tag = 0
        self._unconfirmed: dict[int, str] = {}
        self._nacked: set[str] = set()
        self._returned: set[str] = set()

    def _open(self) -> Any:
        if self._channel is not None and self._channel.is_open:
            return self._channel
        self.close()
        self._connection = amqp.connect(self.url)
        channel = self._connection.channel()
        selected: list[Any] = []
        # the channel implementation's own confirm mode: acks arrive as callbacks, so many
        # messages are in flight at once (BlockingChannel's would wait for each in turn)
        channel._impl.confirm_delivery(self._on_confirm, selected.append)
        channel._impl.add_on_return_callback(self._on_return)
        deadline = time.monotonic() + self.confirm_timeout_s
        while not selected:
            if time.monotonic() > deadline:
                raise TimeoutError("RabbitMQ did not enable publisher confirms")
            self._connection.process_data_events(time_limit=0.05)
        self._channel, self._tag = channel, 0
        return channel

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        tags = (
            [t for t in self._unconfirmed if t <= method.delivery_tag]
            if method.multiple
            else [method.delivery_tag]
        )
        for tag in tags:
            key = self._unconfirmed.pop(tag, None)
            if key is not None and isinstance(method, pika.spec.Basic.Nack):
                self._nacked.add(key)

    def _on_return(self, _channel: Any, method: Any, properties: Any, _body: bytes) -> None:
        self._returned.add(properties.message_id)
        logger.warning(
            "RabbitMQ returned message %r (%s): its queue %r is redeclared",
            properties.message_id,
            method.reply_text,
            method.routing_key,
        )

    def publish(self, items: list[tuple[str, str, bytes, int | None]]) -> set[str]:
        """Publish ``(message_id, queue, body, delay_ms)`` items; the ids RabbitMQ confirmed."""
        channel = self._open()
        self._unconfirmed.clear()
        self._nacked.clear()
        self._returned.clear()
        returned_queues: dict[str, str] = {}
        for message_id, queue, body, delay_ms in items:
            routing_key = queue
            if delay_ms:
                # a short delay keeps Dramatiq's path: its .DQ, the ETA from now
                message = Message.decode(body)
                options = {**message.options, "eta": current_millis() + delay_ms}
                body = message.copy(queue_name=dq_name(queue), options=options).encode()
                routing_key = dq_name(queue)
            returned_queues[message_id] = queue
            priority = _broker_priority(body)
            # registered first: publishing flushes the socket, which may dispatch its confirm
            self._tag += 1
            self._unconfirmed[self._tag] = message_id
            # the channel implementation's publish only buffers the frames; the wait below
            # writes them in one go (BlockingChannel's would flush the socket per message)
            channel._impl.basic_publish(
                exchange="",
                routing_key=routing_key,
                body=body,
                mandatory=True,
                properties=pika.BasicProperties(
                    delivery_mode=2, message_id=message_id, priority=priority
                ),
            )
        deadline = time.monotonic() + self.confirm_timeout_s
        while self._unconfirmed:
            if time.monotonic() > deadline:
                RELAY_FAILURES.labels("timeout").inc()
                self.close()  # late confirms would land on the next batch's tags
                break
            try:
                # short slices: confirms arrive as channel callbacks, which do not end a longer
                # wait
                self._connection.process_data_events(time_limit=0.002)
            except (pika.exceptions.AMQPError, OSError) as exc:
                # the connection died mid-batch: what RabbitMQ confirmed before is kept (its
                # rows are deleted), the rest is published again next round
                RELAY_FAILURES.labels("broker").inc()
                logger.warning(
                    "the relay's connection failed with %d of %d messages unconfirmed (%s)",
                    len(self._unconfirmed),
                    len(items),
                    exc,
                )
                self.close()
                if len(self._unconfirmed) == len(items):
                    raise
                break
        unconfirmed = set(self._unconfirmed.values())
        failed = unconfirmed | self._nacked | self._returned
        if self._nacked:
            RELAY_FAILURES.labels("nack").inc()
        if self._returned:
            RELAY_FAILURES.labels("returned").inc()
            for queue in {returned_queues[m] for m in self._returned}:
                try:
                    self.declare(queue)
                except Exception:
                    logger.warning("could not redeclare queue %r", queue, exc_info=True)
        return {message_id for message_id, *_ in items} - failed

    def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            try:
                connection.close()
            except Exception:
                logger.debug("closing the relay's AMQP connection failed", exc_info=True)


class Relay:
    """Publishes due outbox rows in a background thread; ``wake()`` makes it look at once.

    Parameters:
      connect: opens a psycopg2 connection to the database holding the outbox.
      publisher: publishes a batch and says which rows RabbitMQ confirmed.
      poll_s: how often it looks for due rows when nobody wakes it.
      batch: rows per transaction.
      straggler_after_s: age after which a row without a due time is published here (its
        sender publishes it after commit; this catches a publish that failed or died).
      on_published: called with each published message and its delay after the commit, so
        the application's ``after_enqueue`` hooks see relayed messages as Dramatiq's own.
    """

    def __init__(
        self,
        connect: Callable[[], Any],
        publisher: Publisher,
        *,
        poll_s: float = 0.5,
        batch: int = 500,
        straggler_after_s: float = 30.0,
        max_backoff_s: float = 10.0,
        on_published: Callable[[Message[Any], int | None], None] | None = None,
    ) -> None:
        self.on_published = on_published
        self._connect = connect
        self.publisher = publisher
        self.poll_s = poll_s
        self.batch = batch
        self.straggler_after_s = straggler_after_s
        self.max_backoff_s = max_backoff_s
        self._db: Any = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._abandoned = False
        self.published = 0

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> Relay:
        self._thread = threading.Thread(target=self._run, name="outbox-relay", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread, then publish what is due now (the process's last commits)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._abandoned = True  # from now on the thread closes its connections itself
            if self._thread.is_alive():
                # still inside a round (a publish the broker holds back, a lock): its
                # connections are not this thread's to use or close; the rows stay for the
                # other relays, and the thread closes them when its round ends
                logger.warning(
                    "the relay's thread did not stop within %.0f s; other relays take its rows",
                    timeout,
                )
                return
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline and self.run_once() > 0:
                pass
        except Exception as exc:  # noqa: BLE001  (another relay publishes what is left)
            logger.warning("the relay's last round failed (%s); other relays take the rows", exc)
        self._close_db()
        self.publisher.close()

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            if self._abandoned:  # stop() gave up waiting for this round and left them open
                self._close_db()
                self.publisher.close()

    def _loop(self) -> None:
        backoff = 0.0
        while not self._stop.is_set():
            self._wake.wait(backoff or self.poll_s)
            self._wake.clear()
            try:
                while self.run_once() >= self.batch and not self._stop.is_set():
                    pass
                backoff = 0.0
            except Exception as exc:  # noqa: BLE001  (whatever failed: back off, keep relaying)
                backoff = min(max(backoff * 2, 0.25), self.max_backoff_s)
                RELAY_FAILURES.labels(_reason(exc)).inc()
                logger.warning("outbox relay round failed (%s); retrying in %.2fs", exc, backoff)
                self._close_db()
                self.publisher.close()

    def run_once(self) -> int:
        """Publish one batch of due rows; returns how many RabbitMQ confirmed."""
        if self._db is None:
            self._db = self._connect()
        conn = self._db
        published: list[Any] = []
        try:
            with conn.cursor() as cur:
                cur.execute(
                    _DUE, {"straggler_after_s": self.straggler_after_s, "batch": self.batch}
                )
                rows = cur.fetchall()
                if not rows:
                    conn.rollback()
                    return 0
                confirmed = self.publisher.publish([(r[1], r[2], bytes(r[3]), r[4]) for r in rows])
                published = [r for r in rows if r[1] in confirmed]
                _forget(cur, published)
            conn.commit()
        except Exception as exc:
            self._close_db()
            if not published:
                raise
            # RabbitMQ holds these messages now: their rows must go at once, before this relay's
            # next round or another relay takes them again and publishes them twice
            logger.warning(
                "the relay's commit failed after RabbitMQ confirmed %d messages (%s);"
                " deleting their rows again",
                len(published),
                exc,
            )
            self._forget_again(published)
        for row in published:
            RELAY_PUBLISHED.labels(row[2]).inc()
            RELAY_LAG.observe(max(0.0, float(row[5])))
            self._announce(bytes(row[3]), row[4])
        self.published += len(published)
        return len(published)

    def _forget_again(self, published: list[Any], attempts: int = 5) -> None:
        """Delete confirmed rows on fresh connections, a few times with backoff, then give up
        (the rows are published again later: consumers dedupe)."""
        delay = 0.05
        for attempt in range(1, attempts + 1):
            try:
                conn = self._connect()
                try:
                    with conn.cursor() as cur:
                        _forget(cur, published)
                    conn.commit()
                finally:
                    conn.close()
                return
            except Exception:
                if attempt == attempts:
                    RELAY_FAILURES.labels("database").inc()
                    raise
                time.sleep(delay)  # a retry's backoff, not a wait for work
                delay *= 2

    def _announce(self, body: bytes, delay_ms: int | None) -> None:
        if self.on_published is None:
            return
        try:
            self.on_published(Message.decode(body), delay_ms)
        except Exception:
            logger.warning("an after-publish hook failed", exc_info=True)

    def _close_db(self) -> None:
        conn, self._db = self._db, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                logger.debug("closing the relay's database connection failed", exc_info=True)


def _forget(cur: Any, published: list[Any]) -> None:
    """Delete published rows (``(id, message_id, ...)``) and mark held ones' jobs enqueued."""
    cur.execute("DELETE FROM outbox WHERE id = ANY(%s)", ([r[0] for r in published],))
    cur.execute(_PUBLISHED, ([r[1] for r in published],))


def _reason(exc: BaseException) -> str:
    """A bounded label for a failed round: which side failed."""
    module = type(exc).__module__
    if module.startswith("psycopg2"):
        return "database"
    if module.startswith("pika") or isinstance(exc, ConnectionError | TimeoutError | OSError):
        return "broker"
    return "other"


def connect_psycopg(dsn: str) -> Callable[[], Any]:
    """A connect function for ``Relay``: its own connection, named for pg_stat_activity."""

    def connect() -> Any:
        import os

        import psycopg2

        return psycopg2.connect(
            dsn, connect_timeout=5, application_name=f"shopjobs-relay[{os.getpid()}]"
        )

    return connect


def _broker_priority(body: bytes) -> int | None:
    """A message's ``broker_priority`` option, as Dramatiq's own ``enqueue`` sets it (the body
    is decoded only when it names the option)."""
    if b'"broker_priority"' not in body:
        return None
    value = Message.decode(body).options.get("broker_priority")
    return value if isinstance(value, int) else None
