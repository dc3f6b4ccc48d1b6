"""One engine per process (made after fork), one session per unit of work.

An engine inherited across ``fork()`` would share its pooled sockets with the parent, so the
engine is keyed by pid: a forked worker process always builds its own.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, Result, create_engine
from sqlalchemy.orm import Session, sessionmaker

from jobcore.libpq import TIMEOUTS
from jobcore.settings import JobSettings

_lock = threading.Lock()
_engine: Engine | None = None
_engine_pid: int | None = None
_factory: sessionmaker[Session] | None = None
_read_factory: sessionmaker[Session] | None = None
_settings: JobSettings | None = None


def configure(settings: JobSettings) -> None:
    """Set the settings the process's engine is built from (the next ``get_engine`` uses them)."""
    global _settings
    with _lock:
        if _settings != settings:
            _settings = settings
            _drop_engine()


def _drop_engine() -> None:
    global _engine, _engine_pid, _factory, _read_factory
    if _engine is not None:
        # close=False: in a forked child the parent's connections must not be closed from here
        _engine.dispose(close=_engine_pid == os.getpid())
    _engine, _engine_pid, _factory, _read_factory = None, None, None, None


def get_engine() -> Engine:
    """The engine of this process, created on first use after fork."""
    global _engine, _engine_pid, _factory, _read_factory
    pid = os.getpid()
    engine = _engine
    if engine is not None and _engine_pid == pid:
        return engine
    with _lock:
        if _engine is None or _engine_pid != pid:
            _drop_engine()
            settings = _settings
            if settings is None:
                raise RuntimeError(
                    "jobcore.db is not configured: the entry point must call "
                    "jobcore.db.configure(settings) (broker.py does)"
                )
            _engine = create_engine(
                settings.database_url,
                pool_size=settings.db_pool_size,
                max_overflow=settings.db_pool_size,
                pool_pre_ping=True,
                pool_recycle=1800,
                connect_args={
                    **TIMEOUTS,
                    "application_name": f"shopjobs[{pid}]",
                    "options": settings.db_session_options,  # statement, lock, idle timeouts
                },
            )
            _engine_pid = pid
            _factory = sessionmaker(_engine, expire_on_commit=False)
            _read_factory = sessionmaker(
                _engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
            )
        return _engine


def dispose_engine() -> None:
    """Close this process's connections (worker shutdown, end of a test)."""
    with _lock:
        _drop_engine()


def new_session() -> Session:
    get_engine()
    assert _factory is not None
    return _factory()


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session for one unit of work: commit on success, roll back on error, always close.

    Messages enqueued through ``jobcore.outbox.enqueue`` inside it are published after COMMIT.
    """
    session = new_session()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextmanager
def read_scope() -> Iterator[Session]:
    """A session that only reads: every statement runs on its own (autocommit), so a lookup
    costs one round trip instead of three (BEGIN, the query, COMMIT). Writes made in it are
    not atomic: use ``session_scope`` for them."""
    get_engine()
    assert _read_factory is not None
    session = _read_factory()
    try:
        yield session
    finally:
        session.close()


def affected(result: Result[Any]) -> int:
    """Rows an UPDATE/DELETE/INSERT changed (``Result`` is typed without ``rowcount``)."""
    return cast(CursorResult[Any], result).rowcount
