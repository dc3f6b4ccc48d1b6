"""Helpers shared by the context modules of the notifications area."""

from __future__ import annotations

from jobcore.errors import InvalidInput


def int_ident(ident: str, kind: str) -> int:
    if not ident.isdigit() or int(ident) <= 0:
        raise InvalidInput(f"{kind} id must be a positive integer, got {ident!r}")
    return int(ident)


def money(cents: int, currency: str) -> str:
    return f"{cents // 100}.{cents % 100:02d} {currency}"
