"""What a scenario sent: its message ids and how many are meant to fail."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Sent:
    """Message ids a scenario sent, and how many of them are meant to fail (bad input)."""

    name: str
    message_ids: list[str] = field(default_factory=list)
    expected_failures: int = 0
    # failures in jobs this scenario's jobs start (a pipeline's later steps)
    expected_failures_later: int = 0
