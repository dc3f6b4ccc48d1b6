"""The shop's settings: the core's (broker, database, ledger, metrics) and the domain's, in one object.

Entry points build it once (``Settings.from_env()``) and pass it down; nothing reads the
environment at import time.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from urllib.parse import urlsplit

from jobcore.settings import (
    PREFIX,
    JobSettings,
    SettingsError,
    _bool,
    _field,
    _int,
    _optional_str,
    _url,
    _url_credentials_problems,
    _zone,
)
from jobcore.settings import describe as _describe

__all__ = ["PREFIX", "Settings", "SettingsError", "current", "describe", "install"]


@dataclasses.dataclass(frozen=True)
class Settings(JobSettings):
    """Everything configurable, with defaults that work on a developer machine."""

    smtp_host: str = _field("127.0.0.1", str, "SMTP server host")
    smtp_port: int = _field(8025, _int(1, 65535), "SMTP server port")
    smtp_user: str | None = _field(None, _optional_str, "SMTP user (auth when set)")
    smtp_password: str | None = _field(None, _optional_str, "SMTP password")
    smtp_starttls: bool = _field(False, _bool, "use STARTTLS")
    mail_from: str = _field("shop@example.test", str, "From address of shop e-mail")
    payment_url: str = _field(
        "http://127.0.0.1:8101", _url(("http", "https")), "payment provider API"
    )
    payment_webhook_secret: str = _field(
        "whsec_dev_only",
        str,
        "secrets of the provider's webhook signatures, comma-separated: any one verifies (rotation)",
    )
    warehouse_url: str = _field(
        "http://127.0.0.1:8102", _url(("http", "https")), "warehouse system API"
    )
    carrier_url: str = _field(
        "http://127.0.0.1:8103", _url(("http", "https")), "carrier tracking API"
    )
    storage_url: str = _field(
        "file:///var/tmp/shopjobs/storage",
        str,
        "where exports, images and backups are kept (file:// or s3://)",
    )
    http_timeout_s: int = _field(5, _int(1, 60), "read timeout of every outbound HTTP call")
    # [14] global limits in PostgreSQL (jobcore.limits), across every worker process and host
    payment_concurrency: int = _field(
        4, _int(1, 1000), "payment provider calls in flight at once, across all workers"
    )
    warehouse_concurrency: int = _field(
        4, _int(1, 1000), "warehouse API calls in flight at once, across all workers"
    )
    sms_rate_per_s: int = _field(50, _int(1, 100_000), "SMS sent per second at most, all workers")
    limit_lease_s: int = _field(
        30, _int(1, 3600), "a concurrency slot's lease: a dead holder's slot is free after it"
    )
    limit_wait_ms: int = _field(
        10_000, _int(0, 600_000), "wait for a limit before the job is retried with backoff"
    )
    delivery_check_delay_s: int = _field(
        21600, _int(1, 7 * 86400), "delay of the delivery check after shipping"
    )
    orders_redrive_after_s: int = _field(
        600,
        _int(1, 7 * 86400),
        "an order whose jobs were lost (in no queue) and untouched this long is re-driven",
    )
    timezone: str = _field("Europe/Berlin", _zone, "the shop's time zone")
    scheduler_tick_s: float = _field(
        1.0, float, "seconds between the scheduler's leadership checks (0.05-60)"
    )
    schedule_module: str = _field(
        "shop.scheduling.schedule",
        str,
        "dotted module whose ENTRIES the scheduler runs (tests swap it)",
    )
    # --- subscriptions, cleanup, backups and health ([08]) ---
    cleanup_batch_size: int = _field(1000, _int(1, 100_000), "rows per cleanup transaction")
    cart_max_age_days: int = _field(
        30, _int(1, 3650), "carts not updated for this long are deleted (empty ones first)"
    )
    token_used_keep_hours: int = _field(
        24, _int(0, 24 * 365), "used tokens are kept this long, then deleted"
    )
    audit_log_keep_days: int = _field(
        90, _int(30, 3650), "audit log rows older than this are deleted (at least 30)"
    )
    session_abandoned_days: int = _field(
        14, _int(1, 3650), "anonymous sessions idle this long are deleted"
    )
    ledger_keep_days_succeeded: int = _field(
        14, _int(1, 3650), "succeeded/skipped/cancelled ledger rows kept"
    )
    ledger_keep_days_failed: int = _field(60, _int(1, 3650), "failed/dead ledger rows kept")
    backup_primary_url: str = _field(
        "file:///var/tmp/shopjobs/backups-a", str, "first storage target of backups"
    )
    backup_secondary_url: str = _field(
        "file:///var/tmp/shopjobs/backups-b", str, "second storage target of backups"
    )
    backup_keep_daily: int = _field(7, _int(1, 366), "daily backups kept")
    backup_keep_weekly: int = _field(4, _int(1, 520), "weekly backups kept")
    backup_keep_snapshots: int = _field(5, _int(1, 1000), "pre-operation snapshot backups kept")
    pg_bin_dir: str = _field(
        "/usr/bin", str, "where pg_dump, pg_restore live (major version must match the server)"
    )
    health_timeout_s: int = _field(3, _int(1, 60), "longest one health probe may take")
    health_scheduler_stale_s: int = _field(
        120, _int(5, 86400), "scheduler heartbeat older than this counts as down"
    )
    health_alert_after_s: int = _field(
        300, _int(0, 86400), "a component down this long alerts the admins (once)"
    )
    # --- notifications ([03]): e-mail, SMS, links in messages, retention ---
    smtp_timeout_s: int = _field(10, _int(1, 10), "SMTP connect/read timeout, seconds (at most 10)")
    smtp_ca_file: str | None = _field(
        None, _optional_str, "CA bundle trusted for STARTTLS (default: the system's)"
    )
    sms_url: str = _field("http://127.0.0.1:8104", _url(("http", "https")), "SMS gateway API")
    sms_api_secret: str = _field("sms_dev_only", str, "SMS gateway API key, sent as a Bearer token")
    shop_base_url: str = _field(
        "https://shop.example.test", _url(("http", "https")), "base of links in messages"
    )
    verification_secret: str = _field(
        "verify_dev_only", str, "HMAC secret of e-mail verification links"
    )
    verification_ttl_s: int = _field(
        172800, _int(60, 30 * 86400), "lifetime of a verification link, seconds"
    )
    notify_max_retries: int = _field(
        20, _int(0, 100), "retries of one e-mail/SMS delivery (backoff capped by MAX_BACKOFF_MS)"
    )
    notify_claim_s: int = _field(
        120, _int(15, 3600), "lease of a delivery attempt; after it the sweep may retry"
    )
    notify_retention_days: int = _field(
        90, _int(1, 3650), "settled notifications older than this are deleted"
    )
    payment_overdue_after_h: int = _field(
        24, _int(1, 24 * 90), "hours after which an unpaid order is reminded daily"
    )
    campaign_chunk_size: int = _field(200, _int(1, 10000), "users per fanned-out campaign chunk")
    # [07] catalog jobs: price feed, images, exports, rankings
    price_feed_sources: str = _field(
        "primary=http://127.0.0.1:8111,backup=http://127.0.0.1:8112",
        str,
        "price sources in fallback order, name=url comma-separated",
    )
    price_feeds: str = _field("EUR_USD", str, "feeds polled, BASE_QUOTE comma-separated")
    price_feed_max_age_s: int = _field(
        900, _int(1, 7 * 86400), "a feed value older than this is stale (alert)"
    )
    image_max_bytes: int = _field(
        10_000_000, _int(1024, 200_000_000), "largest image download accepted"
    )
    image_max_pixels: int = _field(
        40_000_000, _int(1, 1_000_000_000), "largest image size (decompression-bomb guard)"
    )
    export_chunk_rows: int = _field(
        5000, _int(100, 1_000_000), "rows per chunk of a streamed export"
    )
    rankings_window_days: int = _field(
        7, _int(1, 365), "days of views and purchases that rank products"
    )
    # observability ([06]): metrics directories and the scheduler's endpoint
    scheduler_metrics_port: int = _field(
        9192, _int(0, 65535), "the scheduler's metrics port (0 disables)"
    )
    # [16] outbound URLs: which hosts downloads may reach
    outbound_allowed_hosts: str = _field(
        "",
        str,
        "hosts outbound downloads may reach, comma-separated (*.example.com for subdomains; "
        "empty: any public host); private, loopback and link-local addresses need listing here",
    )

    # [16] the backup role's login: pg_dump and the scratch restores that verify a dump
    backup_database_url: str | None = _field(
        None,
        lambda raw: _url(("postgresql", "postgresql+psycopg2"))(raw) if raw else None,
        "PostgreSQL URL of the backup role's login (dumps, scratch restores; empty: DATABASE_URL)",
    )

    @property
    def backup_dsn(self) -> str:
        """Where pg_dump reads and scratch restores are made: the backup login if configured."""
        return self.backup_database_url or self.database_url

    @property
    def payment_webhook_secrets(self) -> tuple[str, ...]:
        """The active webhook secrets, in the order given (rotation: add the new, drop the old)."""
        return tuple(
            part.strip() for part in self.payment_webhook_secret.split(",") if part.strip()
        )

    def production_problems(self) -> list[str]:
        """The core's checks plus the shop's: SMTP AUTH only over TLS, a webhook secret set."""
        problems = super().production_problems()
        if self.backup_database_url:
            problems += _url_credentials_problems(
                PREFIX + "BACKUP_DATABASE_URL", self.backup_database_url
            )
        problems += self._private_endpoint_problems()
        if self.smtp_user and not self.smtp_starttls:
            problems.append(
                f"{PREFIX}SMTP_USER is set without {PREFIX}SMTP_STARTTLS=true: "
                "SMTP AUTH would send the password in clear"
            )
        if self.smtp_user and not self.smtp_password:
            problems.append(f"{PREFIX}SMTP_PASSWORD is empty while {PREFIX}SMTP_USER is set")
        return problems

    def _private_endpoint_problems(self) -> list[str]:
        """Configured endpoints written as loopback, private or link-local addresses (or
        localhost) and not listed in OUTBOUND_ALLOWED_HOSTS: the outbound guard would refuse
        every call, so production refuses to start instead (development lists its stand-ins)."""
        listed = {e.strip().lower() for e in self.outbound_allowed_hosts.split(",") if e.strip()}
        endpoints = [
            (PREFIX + name.upper(), getattr(self, name))
            for name in ("payment_url", "warehouse_url", "carrier_url", "sms_url")
        ]
        endpoints += [
            (PREFIX + "PRICE_FEED_SOURCES", entry.split("=", 1)[-1].strip())
            for entry in self.price_feed_sources.split(",")
            if entry.strip()
        ]
        problems = []
        for variable, url in endpoints:
            parts = urlsplit(url)
            host = (parts.hostname or "").lower()
            port = parts.port or (443 if parts.scheme == "https" else 80)
            if _private_host(host) and not {host, f"{host}:{port}"} & listed:
                problems.append(
                    f"{variable} points at {host}, a loopback or private address: list "
                    f"{host}:{port} in {PREFIX}OUTBOUND_ALLOWED_HOSTS if that is meant"
                )
        return problems


def _private_host(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False  # a name: judged after resolution, at connect time
    return not ip.is_global or ip.is_multicast


def describe() -> list[tuple[str, str, str]]:
    """(variable, default, meaning) rows, for the README's configuration table and the CLI."""
    return _describe(Settings)


_installed: Settings | None = None


def install(settings: Settings) -> None:
    """Make ``settings`` the process's settings; the entry point that built them calls this once."""
    global _installed
    _installed = settings


def current() -> Settings:
    """The settings the process's entry point installed (services deep in a call read them here).

    There is no fallback to the environment: a process whose entry point installed nothing
    fails here, naming what to do, rather than running on a second, different reading.
    """
    if _installed is None:
        raise SettingsError(
            "no settings installed: the entry point must build Settings.from_env() and call "
            "shop.settings.install() (broker.py does)"
        )
    return _installed
