"""The console's own settings (``SHOPJOBS_CONSOLE_*``), read once by its entry point."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from typing import Any, Self

from jobcore.settings import PREFIX, SettingsError, _bool, _field, _int, _ip

CONSOLE_PREFIX = PREFIX + "CONSOLE_"


def _role_name(raw: str) -> str:
    if raw and not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", raw):
        raise ValueError("expected a lower-case role name (letters, digits, _)")
    return raw


@dataclasses.dataclass(frozen=True)
class ConsoleSettings:
    """Where the console listens and how strict its sessions are; safe defaults."""

    bind: str = _field("127.0.0.1", _ip, "address the console listens on (loopback unless set)")
    port: int = _field(8180, _int(0, 65535), "console port (0: any free port)")
    secure_cookies: bool = _field(
        True, _bool, "session cookie only over HTTPS (browsers allow it on localhost)"
    )
    session_idle_minutes: int = _field(60, _int(1, 24 * 60), "a session unused this long ends")
    session_max_hours: int = _field(12, _int(1, 24 * 30), "a session ends this long after login")
    bulk_cap: int = _field(500, _int(1, 10_000), "most rows one bulk action touches")
    statement_timeout_ms: int = _field(5000, _int(100, 600_000), "longest a console query may run")
    read_role: str = _field(
        "shopjobs_readonly",
        _role_name,
        "database role the pages read as (SET LOCAL ROLE, when the login may; empty: its own)",
    )
    live_poll_s: float = _field(
        2.0, float, "how often the live feed looks for changes (one query per tick)"
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """Every field from ``SHOPJOBS_CONSOLE_<FIELD>``; a bad value raises naming the variable."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            name = CONSOLE_PREFIX + field.name.upper()
            if name in env:
                try:
                    values[field.name] = field.metadata["parse"](env[name])
                except ValueError as exc:
                    raise SettingsError(f"{name}={env[name]!r} is invalid: {exc}") from None
        settings = cls(**values)
        if not 0.2 <= settings.live_poll_s <= 60:
            raise SettingsError(f"{CONSOLE_PREFIX}LIVE_POLL_S must be between 0.2 and 60")
        return settings
