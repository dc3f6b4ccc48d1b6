"""What the CLI's entry point hands every command: the process's settings and its broker.

Commands live below the entry point and never import ``broker.py`` or the actors; the entry
point builds this once and sets it on the parsed arguments (``args.context``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping

from dramatiq import Broker

from jobcore.ledger.stranded import CheckFn
from jobcore.settings import JobSettings


@dataclasses.dataclass(frozen=True)
class CliContext:
    """Parameters:
    settings: the process's one settings object (the application's subclass).
    broker: the broker with every actor declared (commands that publish call it).
    declare: imports the modules a schedule names and returns the declared actor names.
    flush_ledger: writes the process's buffered ledger rows (after a publish).
    stranded_checks: the application's own stranded-work checks (``jobs stranded``).
    """

    settings: JobSettings
    broker: Callable[[], Broker]
    declare: Callable[[str], Collection[str]]
    flush_ledger: Callable[[], bool]
    stranded_checks: Mapping[str, CheckFn] = dataclasses.field(default_factory=dict)
