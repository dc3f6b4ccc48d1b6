"""The core's settings, read once from the environment (``SHOPJOBS_`` prefix).

Nothing reads the environment at import time: an entry point builds the settings object
(``Settings.from_env()``, an application's subclass of ``JobSettings``) and passes it down.
A field's parser and meaning travel with it, so a bad value names its variable.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Callable, Mapping
from typing import Any, Self
from urllib.parse import quote, unquote, urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PREFIX = "SHOPJOBS_"
# how far below RabbitMQ's consumer_timeout a worker must let go of a delivery: a job's time
# limit, a delay held on Dramatiq's .DQ path (the ack, the ledger commit and a loaded machine
# take their share of the rest)
CONSUMER_TIMEOUT_MARGIN_S = 5


class SettingsError(ValueError):
    """A setting has a value the system cannot run with; the message names the variable."""


def _url(schemes: tuple[str, ...]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        parsed = urlparse(raw)
        if parsed.scheme not in schemes or not parsed.hostname:
            raise ValueError(
                f"expected a URL starting with {' or '.join(s + '://' for s in schemes)}"
            )
        return raw

    return parse


def _urls(schemes: tuple[str, ...]) -> Callable[[str], str]:
    """One URL, or several separated by ``;`` (a cluster's nodes), each checked."""
    one = _url(schemes)

    def parse(raw: str) -> str:
        nodes = [part.strip() for part in raw.split(";") if part.strip()]
        if not nodes:
            raise ValueError("expected at least one URL")
        for node in nodes:
            one(node)
        return ";".join(nodes)

    return parse


def _int(minimum: int, maximum: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw)
        if not minimum <= value <= maximum:
            raise ValueError(f"must be between {minimum} and {maximum}")
        return value

    return parse


def _bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected one of 1/0, true/false, yes/no, on/off")


def _choice(*options: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in options:
            raise ValueError(f"expected one of {', '.join(options)}")
        return raw

    return parse


def _ip(raw: str) -> str:
    ipaddress.ip_address(raw)
    return raw


def _zone(raw: str) -> str:
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError("not a known IANA time zone") from exc
    return raw


def _optional_str(raw: str) -> str | None:
    return raw or None


def _field(default: Any, parse: Callable[[str], Any], doc: str, *, secret: bool = False) -> Any:
    """A setting; ``secret=True`` masks its value in logs and errors (comma-separated: each one)."""
    return dataclasses.field(
        default=default, metadata={"parse": parse, "doc": doc, "secret": secret}
    )


DEFAULT_USERS = frozenset({"guest", "postgres", "root", "admin"})
DEV_ONLY_MARK = "_dev_only"


def _loopback(address: str) -> bool:
    return ipaddress.ip_address(address).is_loopback


def _url_credentials_problems(variable: str, url: str) -> list[str]:
    """Why ``url`` must not be used in production: a default user or an empty password."""
    parsed = urlparse(url)
    problems = []
    if not parsed.username or parsed.username in DEFAULT_USERS:
        problems.append(
            f"{variable} uses the default user {parsed.username or '(none)'!r}: "
            "give the service its own user"
        )
    if not parsed.password:
        problems.append(f"{variable} has an empty password")
    return problems


@dataclasses.dataclass(frozen=True)
class JobSettings:
    """What the job-system core needs: broker, database, ledger, retries, metrics, logs."""

    env: str = _field(
        "development",
        _choice("development", "production"),
        "production refuses default users, empty passwords, *_dev_only secrets and public metrics",
    )
    amqp_url: str = _field(
        "amqp://guest:guest@127.0.0.1:5672/%2F",
        _urls(("amqp", "amqps")),
        "RabbitMQ URL (vhost in the path); a cluster's nodes separated by ';', tried in order",
    )
    broker: str = _field(
        "rabbitmq", _choice("rabbitmq", "stub"), "rabbitmq, or stub for unit tests"
    )
    amqp_heartbeat: int = _field(30, _int(0, 600), "AMQP heartbeat, seconds")
    queue_type: str = _field(
        "classic",
        _choice("classic", "quorum"),
        "classic, or quorum (replicated on a cluster; no priorities; native delivery limit)",
    )
    queue_max_priority: int = _field(
        0, _int(0, 255), "classic queues' x-max-priority, so broker_priority works (0: none)"
    )
    queue_delivery_limit: int = _field(
        5, _int(1, 1000), "quorum queues: deliveries after which RabbitMQ dead-letters a message"
    )
    database_url: str = _field(
        "postgresql+psycopg2://postgres@127.0.0.1:5432/shopjobs",
        _url(("postgresql", "postgresql+psycopg2")),
        "PostgreSQL URL (shop data and job ledger)",
    )
    db_pool_size: int = _field(10, _int(1, 200), "connections per worker process")
    db_statement_timeout_ms: int = _field(
        30_000, _int(0, 86_400_000), "longest statement of the application's connections (0: none)"
    )
    db_lock_timeout_ms: int = _field(
        5_000, _int(0, 86_400_000), "longest wait for a lock before the statement fails (0: none)"
    )
    db_idle_in_transaction_timeout_ms: int = _field(
        60_000,
        _int(0, 86_400_000),
        "an open transaction left idle this long is ended by the server",
    )
    metrics_bind: str = _field("127.0.0.1", _ip, "address the metrics endpoint binds to")
    metrics_public: bool = _field(
        False, _bool, "allow METRICS_BIND beyond loopback in production (a scrape network, say so)"
    )
    metrics_port: int = _field(9191, _int(0, 65535), "metrics port (0 disables)")
    log_format: str = _field("console", _choice("console", "json"), "console or json")
    log_level: str = _field("INFO", _choice("DEBUG", "INFO", "WARNING", "ERROR"), "log level")
    ledger_enabled: bool = _field(True, _bool, "record every job in the PostgreSQL ledger")
    ledger_flush_ms: int = _field(50, _int(1, 5000), "longest a non-final ledger write waits")
    ledger_gather_ms: int = _field(
        5, _int(0, 1000), "how long an ack-bound ledger flush gathers rows"
    )
    prefetch_per_thread: int = _field(16, _int(1, 1000), "unacked messages per worker thread")
    ledger_max_batch: int = _field(500, _int(1, 100000), "rows per ledger flush at most")
    ledger_args_max_bytes: int = _field(2048, _int(64, 1_000_000), "size cap of args kept per job")
    default_max_retries: int = _field(5, _int(0, 100), "retries of an actor that sets none")
    min_backoff_ms: int = _field(1000, _int(1, 3_600_000), "first retry delay")
    max_backoff_ms: int = _field(
        600_000, _int(1, 86_400_000), "longest retry delay (reference: 10 min)"
    )
    outbox_relay_after_s: int = _field(
        30, _int(1, 86400), "age after which the relay publishes an outbox row"
    )
    durable_sends: bool = _field(
        True,
        _bool,
        "commit a job's sends with its outcome, then relay them (off: Dramatiq publishes them"
        " from the job, unsafely; only to measure what durable sends cost)",
    )
    delay_in_db_after_s: int = _field(
        30, _int(0, 86400), "a send delayed longer than this waits in PostgreSQL, not in a worker"
    )
    consumer_timeout_s: int = _field(
        1800,
        _int(CONSUMER_TIMEOUT_MARGIN_S, 30 * 86400),
        "RabbitMQ's consumer_timeout in seconds (its default 1800): every actor's time limit and"
        " DELAY_IN_DB_AFTER_S must end at least 5 s before it",
    )
    relay_poll_ms: int = _field(
        500, _int(10, 60000), "how often the outbox relay looks for due rows"
    )
    # a failed round costs a refused connect; a long cap delays every send after an outage
    relay_max_backoff_ms: int = _field(
        2000, _int(10, 600000), "longest wait between failed outbox relay rounds"
    )
    stranded_after_s: int = _field(
        300, _int(1, 86400), "seconds past due after which a send counts as stranded"
    )
    metrics_dir: str = _field(
        "",
        str,
        "base of the per-instance multiprocess metrics directories (empty: <tmp>/shopjobs-metrics)",
    )
    metrics_flush_ms: int = _field(
        1000,
        _int(0, 60_000),
        "how often a worker process writes its metric values (0: every update)",
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """Read every field from ``SHOPJOBS_<FIELD>``; a bad value raises naming the variable."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            name = PREFIX + field.name.upper()
            if name not in env:
                continue
            raw = env[name]
            try:
                values[field.name] = field.metadata["parse"](raw)
            except ValueError as exc:
                shown = "<hidden>" if _is_secret(field) else repr(raw)
                raise SettingsError(f"{name}={shown} is invalid: {exc}") from None
        settings = cls(**values)
        if settings.min_backoff_ms > settings.max_backoff_ms:
            raise SettingsError(f"{PREFIX}MIN_BACKOFF_MS must not exceed {PREFIX}MAX_BACKOFF_MS")
        if settings.delay_in_db_after_s > settings.consumer_timeout_s - CONSUMER_TIMEOUT_MARGIN_S:
            raise SettingsError(
                f"{PREFIX}DELAY_IN_DB_AFTER_S={settings.delay_in_db_after_s} must be at least "
                f"{CONSUMER_TIMEOUT_MARGIN_S} s below {PREFIX}CONSUMER_TIMEOUT_S="
                f"{settings.consumer_timeout_s}: a worker holds a delay up to it unacked "
                "(Dramatiq's .DQ path), and RabbitMQ closes the channel of a delivery unacked "
                f"past consumer_timeout; lower {PREFIX}DELAY_IN_DB_AFTER_S"
            )
        if settings.queue_type == "quorum" and settings.queue_max_priority:
            raise SettingsError(
                f"{PREFIX}QUEUE_TYPE=quorum with {PREFIX}QUEUE_MAX_PRIORITY="
                f"{settings.queue_max_priority}: quorum queues have no priorities; "
                f"set {PREFIX}QUEUE_MAX_PRIORITY=0 or use classic queues"
            )
        if settings.production:
            problems = settings.production_problems()
            if problems:
                raise SettingsError(
                    f"{PREFIX}ENV=production refuses to start:\n  - " + "\n  - ".join(problems)
                )
        return settings

    @property
    def production(self) -> bool:
        return self.env == "production"

    def production_problems(self) -> list[str]:
        """What production refuses, one line per problem naming its variable.

        Subclasses add their own fields' checks to the list (``super().production_problems()``);
        the checks of every ``*_dev_only`` value and of empty secrets cover their fields too.
        """
        problems = [
            problem
            for node in self.amqp_url.split(";")
            for problem in _url_credentials_problems(PREFIX + "AMQP_URL", node)
        ]
        problems += _url_credentials_problems(PREFIX + "DATABASE_URL", self.database_url)
        if self.broker != "rabbitmq":
            problems.append(f"{PREFIX}BROKER={self.broker!r}: production runs on rabbitmq")
        if not _loopback(self.metrics_bind) and not self.metrics_public:
            problems.append(
                f"{PREFIX}METRICS_BIND={self.metrics_bind} is beyond loopback: "
                f"set {PREFIX}METRICS_PUBLIC=true to say the metrics network is meant"
            )
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            variable = PREFIX + field.name.upper()
            if isinstance(value, str) and DEV_ONLY_MARK in value:
                problems.append(f"{variable} holds a {DEV_ONLY_MARK} value: set a real secret")
            elif _is_secret(field) and isinstance(value, str) and not value.strip(" ,"):
                problems.append(f"{variable} is empty: set a real secret")
        return problems

    def secret_values(self) -> list[str]:
        """Every configured secret: secret fields (each comma-separated part) and URL passwords."""
        found: list[str] = []
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, str) or not value:
                continue
            if _is_secret(field):
                found += [value] + [part.strip() for part in value.split(",") if part.strip()]
            elif "://" in value:
                for node in value.split(";"):
                    password = urlparse(node).password
                    if password:
                        found += [password, unquote(password)]
        return list(dict.fromkeys(found))

    @property
    def amqp_url_with_heartbeat(self) -> str:
        """The AMQP URL(s) with heartbeat and a blocked-connection timeout unless already given."""
        return ";".join(self._with_heartbeat(node) for node in self.amqp_url.split(";"))

    def _with_heartbeat(self, url: str) -> str:
        extra = []
        if "heartbeat=" not in url:
            extra.append(f"heartbeat={self.amqp_heartbeat}")
        if "blocked_connection_timeout=" not in url:
            extra.append("blocked_connection_timeout=60")
        if not extra:
            return url
        return url + ("&" if "?" in url else "?") + "&".join(extra)

    @property
    def db_session_options(self) -> str:
        """libpq ``options`` that bound every statement, lock wait and idle transaction.

        Set at connect, so no session of the application runs unbounded: a blocked ledger flush
        fails after ``lock_timeout`` instead of holding back every ack of its process, and a
        transaction forgotten open stops holding its locks after the idle timeout.
        """
        return (
            f"-c statement_timeout={self.db_statement_timeout_ms}"
            f" -c lock_timeout={self.db_lock_timeout_ms}"
            f" -c idle_in_transaction_session_timeout={self.db_idle_in_transaction_timeout_ms}"
        )

    @property
    def psycopg_dsn(self) -> str:
        """The database URL in the form psycopg2 accepts, with the session timeouts as options.

        Not for pg_dump/pg_restore: a dump must not be cut by the application's statement timeout.
        """
        dsn = self.database_url.replace("postgresql+psycopg2://", "postgresql://", 1)
        if "options=" in dsn:
            return dsn
        return dsn + ("&" if "?" in dsn else "?") + "options=" + quote(self.db_session_options)


def _is_secret(field: dataclasses.Field[Any]) -> bool:
    return bool(field.metadata.get("secret")) or any(
        word in field.name for word in ("password", "secret")
    )


def describe(cls: type[JobSettings] = JobSettings) -> list[tuple[str, str, str]]:
    """(variable, default, meaning) rows of ``cls``, for the README's configuration table and the CLI."""
    rows = []
    for field in dataclasses.fields(cls):
        default = "" if field.default is None else str(field.default)
        rows.append((PREFIX + field.name.upper(), default, field.metadata["doc"]))
    return rows
