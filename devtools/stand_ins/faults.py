"""Fault injection for stand-ins: which requests fail and how, chosen deterministically.

A rate of 0.5 fails the 1st, 3rd, 5th... matching request, not a random half, so a test that
expects "fail, then succeed on retry" is repeatable run after run.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

BASE_MODES = frozenset({"none", "timeout", "http_500", "http_503", "rate_limit", "slow"})
HOLD_DEFAULT_S = 30.0  # longer than any client read timeout we use
SLOW_DEFAULT_S = 1.0
DELAY_MAX_S = 60.0  # a held request always ends, even if nobody stops the stand-in
FIELDS = ("mode", "rate", "delay_s", "retry_after_s", "paths", "times")


class FaultConfigError(ValueError):
    """The fault JSON is malformed; the admin endpoint answers 400 with this message."""


@dataclass(frozen=True)
class FaultSpec:
    """One fault rule.

    Parameters:
      mode: what to do to an affected request (``none`` turns faults off).
      rate: fraction of matching requests affected, spread evenly, starting with the first.
      delay_s: how long ``slow`` waits, or ``timeout`` / ``timeout_after_*`` hold the request.
      retry_after_s: the ``Retry-After`` header of ``rate_limit`` answers.
      paths: path prefixes (``"/v1/charges"``) or method-qualified ones (``"POST /v1/charges"``);
        a trailing ``$`` asks for an exact path. ``None`` matches every non-admin path.
      times: stop after this many injected faults (``None``: no limit).
    """

    mode: str = "none"
    rate: float = 1.0
    delay_s: float | None = None
    retry_after_s: int = 1
    paths: tuple[str, ...] | None = None
    times: int | None = None

    @classmethod
    def parse(cls, data: Any, modes: frozenset[str]) -> FaultSpec:
        """Validate the admin JSON; unknown keys are refused: a typo never quietly does nothing."""
        if not isinstance(data, dict):
            raise FaultConfigError("faults must be a JSON object")
        unknown = sorted(set(data) - set(FIELDS))
        if unknown:
            raise FaultConfigError(f"unknown fault fields {unknown}; known: {list(FIELDS)}")
        mode = data.get("mode", "none")
        if mode not in modes:
            raise FaultConfigError(f"mode {mode!r} is not one of {sorted(modes)}")
        rate = _number(data.get("rate", 1.0), "rate")
        if not 0.0 <= rate <= 1.0:
            raise FaultConfigError("rate must be between 0.0 and 1.0")
        delay = data.get("delay_s")
        if delay is not None:
            delay = _number(delay, "delay_s")
            if not 0.0 <= delay <= DELAY_MAX_S:
                raise FaultConfigError(f"delay_s must be between 0 and {DELAY_MAX_S}")
        retry_after = data.get("retry_after_s", 1)
        if not _is_int(retry_after) or retry_after < 0:
            raise FaultConfigError("retry_after_s must be a non-negative integer")
        paths = data.get("paths")
        if paths is not None:
            if not isinstance(paths, list) or not all(isinstance(p, str) and p for p in paths):
                raise FaultConfigError("paths must be a list of non-empty strings or null")
            paths = tuple(paths)
        times = data.get("times")
        if times is not None and (not _is_int(times) or times < 1):
            raise FaultConfigError("times must be a positive integer or null")
        return cls(mode, rate, delay, retry_after, paths, times)

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "rate": self.rate,
            "delay_s": self.delay_s,
            "retry_after_s": self.retry_after_s,
            "paths": list(self.paths) if self.paths is not None else None,
            "times": self.times,
        }

    @property
    def hold_s(self) -> float:
        """How long a ``timeout`` mode holds a request before dropping the connection."""
        return HOLD_DEFAULT_S if self.delay_s is None else self.delay_s

    @property
    def slow_s(self) -> float:
        return SLOW_DEFAULT_S if self.delay_s is None else self.delay_s

    def matches(self, method: str, path: str) -> bool:
        if self.paths is None:
            return True
        return any(_path_matches(rule, method, path) for rule in self.paths)


def _path_matches(rule: str, method: str, path: str) -> bool:
    rule_method, _, rule_path = rule.partition(" ") if " " in rule else ("", "", rule)
    if rule_method and rule_method.upper() != method.upper():
        return False
    if rule_path.endswith("$"):
        return path == rule_path[:-1]
    return path.startswith(rule_path)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FaultConfigError(f"{name} must be a number")
    return float(value)


class FaultController:
    """Holds the current fault rule and decides, thread-safely, which requests it hits."""

    def __init__(self, modes: frozenset[str]) -> None:
        self.modes = modes
        self._lock = threading.Lock()
        self._spec = FaultSpec()
        self._step = Fraction(0)
        self._matched = 0
        self._injected = 0

    def configure(self, data: Any) -> dict[str, Any]:
        """Replace the rule (counters restart, so the pattern is the same every time)."""
        spec = FaultSpec.parse(data, self.modes)
        with self._lock:
            self._spec = spec
            self._step = Fraction(spec.rate).limit_denominator(1000)
            self._matched = 0
            self._injected = 0
        return self.snapshot()

    def clear(self) -> None:
        self.configure({"mode": "none"})

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {**self._spec.to_json(), "matched": self._matched, "injected": self._injected}

    def decide(
        self, method: str, path: str, applies: Callable[[FaultSpec], bool]
    ) -> FaultSpec | None:
        """Return the rule if this request is to be faulted, else ``None``."""
        with self._lock:
            spec = self._spec
            if spec.mode == "none" or not spec.matches(method, path) or not applies(spec):
                return None
            if spec.times is not None and self._injected >= spec.times:
                return None
            n = self._matched
            self._matched += 1
            # the k-th request is hit when ceil(k * rate) steps up: even spacing, first one hit
            if math.ceil((n + 1) * self._step) <= math.ceil(n * self._step):
                return None
            self._injected += 1
            return spec
