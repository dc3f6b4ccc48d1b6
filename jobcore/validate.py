"""Checks on message arguments: a wrong type is a permanent error with a message that says what."""

from __future__ import annotations

import math
from typing import Any

from jobcore.errors import InvalidInput


def positive_id(value: Any, name: str) -> int:
    """An id must be a positive int (not a bool, a float or a numeric string)."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0 or value >= 2**63:
        raise InvalidInput(f"{name} must be a positive integer id, got {type(value).__name__}")
    return value


def minor_units(value: Any, name: str, *, allow_zero: bool = False) -> int:
    """Money in integer minor units (cents); floats and NaN are refused, never rounded."""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        raise InvalidInput(f"{name} must be an integer amount in minor units, got {value!r}")
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(
            f"{name} must be an integer amount in minor units, got {type(value).__name__}"
        )
    if value < 0 or (value == 0 and not allow_zero):
        raise InvalidInput(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value}")
    return value


def text(value: Any, name: str, *, max_len: int = 500, allow_empty: bool = False) -> str:
    if (
        not isinstance(value, str)
        or (not allow_empty and not value.strip())
        or len(value) > max_len
    ):
        raise InvalidInput(f"{name} must be a non-empty string of at most {max_len} characters")
    return value
