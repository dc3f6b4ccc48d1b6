"""The process's storage backend, opened on first use after fork from ``Settings.storage_url``."""

from __future__ import annotations

import os
import threading

from shop.settings import current as current_settings
from shop.storage import Storage, open_storage

_lock = threading.Lock()
_opened: dict[int, Storage] = {}


def storage() -> Storage:
    pid = os.getpid()
    found = _opened.get(pid)
    if found is None:
        with _lock:
            found = _opened.get(pid)
            if found is None:
                found = _opened[pid] = open_storage(current_settings().storage_url)
    return found


def reset() -> None:
    """Forget the opened backend (tests that change ``SHOPJOBS_STORAGE_URL``)."""
    with _lock:
        _opened.clear()
