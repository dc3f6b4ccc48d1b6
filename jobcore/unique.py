"""Unique jobs: at most one job per key is enqueued, scheduled or running within a window.

``send_with_options(..., unique_key="report:42", unique_for=600_000)`` (or
``outbox.enqueue(session, actor, ..., unique_key=..., unique_for=...)``) claims the key in
``job_unique_keys`` in the transaction that writes the message's outbox and ledger rows. The
table's primary key decides, never a read before the write: the claim is one
``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` that takes the row over only when its holder's
ledger row is final or its window (``unique_for``, ms) has passed. A send that loses writes
nothing and returns the holder's message id, or raises ``DuplicateJob`` with
``on_duplicate="refuse"``.

The same options may be declared on the actor (``@dramatiq.actor(unique_key=..., unique_for=...)``
or a route's options): every send of that actor is then unique, with ``unique_key`` a string
or a callable of the message's args and kwargs that returns the key (or None: that message is
not unique). A message's own ``unique_key`` wins over its actor's.

Inside a job the send is buffered (``jobcore.sends``) and the claim runs in the commit of the
job's outcome, so the id a job gets back is its own; a duplicate is dropped at that commit.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from typing import Any

from jobcore.errors import InvalidSend
from jobcore.ledger.states import FINAL, sql_list

KEY_OPTION = "unique_key"
FOR_OPTION = "unique_for"
ON_DUPLICATE_OPTION = "on_duplicate"
OPTIONS = (KEY_OPTION, FOR_OPTION, ON_DUPLICATE_OPTION)
MAX_KEY_LENGTH = 200
DEFAULT_FOR_MS = 3_600_000


class DuplicateJob(Exception):
    """A unique send was refused: ``message_id`` holds ``key`` (``on_duplicate="refuse"``)."""

    def __init__(self, key: str, message_id: str) -> None:
        super().__init__(f"a job with unique key {key!r} is already pending: {message_id}")
        self.key = key
        self.message_id = message_id


@dataclasses.dataclass(frozen=True)
class Unique:
    """A send's uniqueness: its key, its window in ms, and whether a duplicate raises."""

    key: str
    for_ms: int = DEFAULT_FOR_MS
    refuse: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key:
            raise InvalidSend(f"unique_key must be a non-empty string, got {self.key!r}")
        if len(self.key) > MAX_KEY_LENGTH:
            raise InvalidSend(
                f"unique_key is {len(self.key)} characters; at most {MAX_KEY_LENGTH} are allowed "
                "(hash the long part)"
            )
        if isinstance(self.for_ms, bool) or not isinstance(self.for_ms, int) or self.for_ms < 1:
            raise InvalidSend(f"unique_for must be a positive number of ms, got {self.for_ms!r}")

    @classmethod
    def of(cls, options: Mapping[str, Any]) -> Unique | None:
        """The uniqueness a message's options ask for; None without ``unique_key``."""
        if options.get(KEY_OPTION) is None:
            if options.get(FOR_OPTION) is not None:
                raise InvalidSend("unique_for was given without unique_key")
            return None
        on_duplicate = options.get(ON_DUPLICATE_OPTION, "return")
        if on_duplicate not in ("return", "refuse"):
            raise InvalidSend(f"on_duplicate must be 'return' or 'refuse', got {on_duplicate!r}")
        for_ms = options.get(FOR_OPTION)
        return cls(
            options[KEY_OPTION],
            DEFAULT_FOR_MS if for_ms is None else for_ms,
            on_duplicate == "refuse",
        )

    @classmethod
    def for_message(
        cls, message: Any, actor_options: Mapping[str, Any] | None = None
    ) -> Unique | None:
        """The uniqueness of ``message``: its own options, else its actor's ``actor_options``.

        An actor's ``unique_key`` may be a callable of the message's args and kwargs; its
        result is the key (None: this message is not unique). Bad values raise ``InvalidSend``.
        """
        own = message.options
        if own.get(KEY_OPTION) is not None or own.get(FOR_OPTION) is not None:
            return cls.of(own)
        if not actor_options or actor_options.get(KEY_OPTION) is None:
            return None
        key = actor_key(actor_options[KEY_OPTION], message)
        if key is None:
            return None
        return cls.of(
            {
                KEY_OPTION: key,
                FOR_OPTION: actor_options.get(FOR_OPTION),
                ON_DUPLICATE_OPTION: own.get(
                    ON_DUPLICATE_OPTION, actor_options.get(ON_DUPLICATE_OPTION, "return")
                ),
            }
        )

    def options(self) -> dict[str, Any]:
        """The message options that carry this uniqueness."""
        options: dict[str, Any] = {KEY_OPTION: self.key, FOR_OPTION: self.for_ms}
        if self.refuse:
            options[ON_DUPLICATE_OPTION] = "refuse"
        return options


KeyOption = str | Callable[..., str | None]


def actor_key(key: KeyOption, message: Any) -> str | None:
    """An actor's ``unique_key`` for ``message``: the string, or the callable's result."""
    if not callable(key):
        return key
    try:
        derived = key(*message.args, **message.kwargs)
    except Exception as exc:
        raise InvalidSend(
            f"the unique_key of {message.actor_name} failed on the message's args: {exc!r}"
        ) from exc
    if derived is not None and not isinstance(derived, str):
        raise InvalidSend(
            f"the unique_key of {message.actor_name} must return a string or None, got {derived!r}"
        )
    return derived


def check_actor_options(actor_name: str, options: Mapping[str, Any]) -> None:
    """Refuse bad unique options when an actor is declared (a callable key is checked per send)."""
    key = options.get(KEY_OPTION)
    if key is None:
        if options.get(FOR_OPTION) is not None:
            raise InvalidSend(f"actor {actor_name}: unique_for was given without unique_key")
        return
    probe = {
        KEY_OPTION: "probe" if callable(key) else key,
        FOR_OPTION: options.get(FOR_OPTION),
        ON_DUPLICATE_OPTION: options.get(ON_DUPLICATE_OPTION, "return"),
    }
    try:
        Unique.of(probe)
    except InvalidSend as exc:
        raise InvalidSend(f"actor {actor_name}: {exc}") from None


# Sorted by key so two transactions claiming several keys lock them in one order (no deadlock).
# The takeover test reads the ledger with the statement's snapshot: a holder that went final
# after it began is still seen as pending (a conservative refusal, never a second holder).
_CLAIM = f"""
INSERT INTO job_unique_keys AS k (key, message_id, claimed_at, expires_at)
SELECT v.key, v.message_id, now(), now() + make_interval(secs => v.for_ms / 1000.0)
FROM json_to_recordset(%(rows)s::json) AS v(key text, message_id text, for_ms bigint)
ORDER BY v.key
ON CONFLICT (key) DO UPDATE SET message_id = EXCLUDED.message_id,
    claimed_at = EXCLUDED.claimed_at, expires_at = EXCLUDED.expires_at
WHERE k.message_id = EXCLUDED.message_id OR k.expires_at <= now()
    OR EXISTS (SELECT 1 FROM job_ledger j WHERE j.message_id = k.message_id
               AND j.state IN {sql_list(FINAL)})
RETURNING k.key
"""
_HOLDERS = "SELECT key, message_id FROM job_unique_keys WHERE key = ANY(%(keys)s)"


def claim(cursor: Any, wanted: list[tuple[Unique, str]]) -> dict[str, str]:
    """Claim each ``(unique, message_id)`` with ``cursor`` (psycopg2), in its transaction.

    Returns ``{message_id: holder}``: a message holds its key when ``holder == message_id``.
    Of two sends with one key in the same call, the first claims it.
    """
    first: dict[str, tuple[Unique, str]] = {}
    for unique, message_id in wanted:
        first.setdefault(unique.key, (unique, message_id))
    rows = [{"key": u.key, "message_id": m, "for_ms": u.for_ms} for u, m in first.values()]
    holders: dict[str, str] = {}
    if rows:
        cursor.execute(_CLAIM, {"rows": json.dumps(rows, separators=(",", ":"))})
        won = {row[0] for row in cursor.fetchall()}
        holders = {key: first[key][1] for key in won}
        lost = [key for key in first if key not in won]
        if lost:
            cursor.execute(_HOLDERS, {"keys": lost})
            holders.update({key: message_id for key, message_id in cursor.fetchall()})
    return {message_id: holders[unique.key] for unique, message_id in wanted}


_PRUNE = """
DELETE FROM job_unique_keys WHERE key IN (
    SELECT key FROM job_unique_keys WHERE expires_at < now() - interval '1 hour'
    LIMIT %(batch)s FOR UPDATE SKIP LOCKED)
"""


def prune(cursor: Any, batch: int = 5000) -> int:
    """Delete up to ``batch`` keys whose window ended over an hour ago; returns how many.

    Safe beside claims: an expired key is taken over by the next claim anyway, and a claim
    that finds no row inserts one."""
    cursor.execute(_PRUNE, {"batch": batch})
    return int(cursor.rowcount)
