"""The console's pages read as the read-only role: whatever a page's query would do, it can
read and nothing more (the console's login is the application role, which it needs for its
sessions, audit rows and operators' actions)."""

from __future__ import annotations

import os
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import exc, text
from sqlalchemy.engine import make_url

import broker  # noqa: F401  (builds and installs the settings, configures the engine)
from jobcore.console.settings import ConsoleSettings
from jobcore.console.views.common import reading
from jobcore.db import session_scope
from tests.support.factories import make_order, make_product


def _request(**console: str) -> Any:
    """What ``reading`` needs of a request: the console's settings on the app's state."""
    settings = ConsoleSettings.from_env(
        {f"SHOPJOBS_CONSOLE_{k.upper()}": v for k, v in console.items()}
    )
    return SimpleNamespace(
        app=SimpleNamespace(state=SimpleNamespace(console=SimpleNamespace(console=settings)))
    )


def test_a_page_reads_as_the_read_only_role_and_cannot_write(clean):
    with session_scope() as s:
        make_order(s, lines=[(make_product(s, stock=5), 1)])
    # When a page reads, Then it runs as shopjobs_readonly and sees the shop
    with reading(_request()) as s:
        assert s.scalar(text("SELECT current_user")) == "shopjobs_readonly"
        assert s.scalar(text("SELECT count(*) FROM orders")) == 1
        # And a write in its transaction is refused, on any table
        for statement in ("UPDATE orders SET status = status", "DELETE FROM job_ledger"):
            with pytest.raises(exc.ProgrammingError, match="permission denied"), s.begin_nested():
                s.execute(text(statement))
    # And outside a page, the console's own login is back (its sessions and audit rows)
    with session_scope() as s:
        assert (
            s.scalar(text("SELECT current_user"))
            == make_url(os.environ["SHOPJOBS_DATABASE_URL"]).username
        )


def test_without_a_read_role_a_page_reads_as_the_login_itself(clean):
    with reading(_request(read_role="")) as s:
        assert (
            s.scalar(text("SELECT current_user"))
            == make_url(os.environ["SHOPJOBS_DATABASE_URL"]).username
        )
