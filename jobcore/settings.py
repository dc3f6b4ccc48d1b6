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
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PREFIX = "SHOPJOBS_"


class SettingsError(ValueError):
    """A setting has a value the system cannot run with; the message names the variable."""


def _url(schemes: tuple[str, ...]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        parsed = urlparse(raw)
        if parsed.scheme not in schemes or not parsed.hostname:
            raise ValueError(f"expected a URL starting with {' or '.join(s + '://' for s in schemes)}")
        return raw

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


def _field(default: Any, parse: Callable[[str], Any], doc: str) -> Any:
    return dataclasses.field(default=default, metadata={"parse": parse, "doc": doc})


@dataclasses.dataclass(frozen=True)
class JobSettings:
    """What the job-system core needs: broker, database, ledger, retries, metrics, logs."""

    amqp_url: str = _field(
        "amqp://guest:guest@127.0.0.1:5672/%2F", _url(("amqp", "amqps")), "RabbitMQ URL (vhost in the path)"
    )
    broker: str = _field("rabbitmq", _choice("rabbitmq", "stub"), "rabbitmq, or stub for unit tests")
    amqp_heartbeat: int = _field(30, _int(0, 600), "AMQP heartbeat, seconds")
    database_url: str = _field(
        "postgresql+psycopg2://postgres@127.0.0.1:5432/shopjobs",
        _url(("postgresql", "postgresql+psycopg2")),
        "PostgreSQL URL (shop data and job ledger)",
    )
    db_pool_size: int = _field(10, _int(1, 200), "connections per worker process")
    metrics_bind: str = _field("127.0.0.1", _ip, "address the metrics endpoint binds to")
    metrics_port: int = _field(9191, _int(0, 65535), "metrics port (0 disables)")
    log_format: str = _field("console", _choice("console", "json"), "console or json")
    log_level: str = _field("INFO", _choice("DEBUG", "INFO", "WARNING", "ERROR"), "log level")
    ledger_enabled: bool = _field(True, _bool, "record every job in the PostgreSQL ledger")
    ledger_flush_ms: int = _field(50, _int(1, 5000), "longest a non-final ledger write waits")
    ledger_gather_ms: int = _field(5, _int(0, 1000), "how long an ack-bound ledger flush gathers rows")
    prefetch_per_thread: int = _field(16, _int(1, 1000), "unacked messages per worker thread")
    ledger_max_batch: int = _field(500, _int(1, 100000), "rows per ledger flush at most")
    ledger_args_max_bytes: int = _field(2048, _int(64, 1_000_000), "size cap of args kept per job")
    default_max_retries: int = _field(5, _int(0, 100), "retries of an actor that sets none")
    min_backoff_ms: int = _field(1000, _int(1, 3_600_000), "first retry delay")
    max_backoff_ms: int = _field(600_000, _int(1, 86_400_000), "longest retry delay (reference: 10 min)")
    outbox_relay_after_s: int = _field(30, _int(1, 86400), "age after which the relay publishes an outbox row")
    metrics_dir: str = _field(
        "", str, "base of the per-instance multiprocess metrics directories (empty: <tmp>/shopjobs-metrics)"
    )
    metrics_flush_ms: int = _field(
        1000, _int(0, 60_000), "how often a worker process writes its metric values (0: every update)"
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
                shown = "<hidden>" if "password" in field.name or "secret" in field.name else repr(raw)
                raise SettingsError(f"{name}={shown} is invalid: {exc}") from None
        settings = cls(**values)
        if settings.min_backoff_ms > settings.max_backoff_ms:
            raise SettingsError(
                f"{PREFIX}MIN_BACKOFF_MS must not exceed {PREFIX}MAX_BACKOFF_MS"
            )
        return settings

    @property
    def amqp_url_with_heartbeat(self) -> str:
        """The AMQP URL with heartbeat and a blocked-connection timeout unless already given."""
        url = self.amqp_url
        extra = []
        if "heartbeat=" not in url:
            extra.append(f"heartbeat={self.amqp_heartbeat}")
        if "blocked_connection_timeout=" not in url:
            extra.append("blocked_connection_timeout=60")
        if not extra:
            return url
        return url + ("&" if "?" in url else "?") + "&".join(extra)

    @property
    def psycopg_dsn(self) -> str:
        """The database URL in the form psycopg2 and libpq tools accept."""
        return self.database_url.replace("postgresql+psycopg2://", "postgresql://", 1)


def describe(cls: type[JobSettings] = JobSettings) -> list[tuple[str, str, str]]:
    """(variable, default, meaning) rows of ``cls``, for the README's configuration table and the CLI."""
    rows = []
    for field in dataclasses.fields(cls):
        default = "" if field.default is None else str(field.default)
        rows.append((PREFIX + field.name.upper(), default, field.metadata["doc"]))
    return rows
