"""Polling with a deadline: how tests wait for work, instead of sleeping (devtools.waiting)."""

from __future__ import annotations

from devtools.waiting import wait_until

__all__ = ["wait_until"]
