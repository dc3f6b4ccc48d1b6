"""Start a stand-in module as its own process (the SMTP and SMS stand-ins of notifications).

The same contract as ``process.start_stand_in`` (READY line on stdout, own session, exits with
its parent), for modules outside that helper's fixed list and with extra command-line flags.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from typing import IO, TypeVar

from shop.stand_ins.process import ROOT, StandIn, StandInError, _read_ready, _tail, _terminate

S = TypeVar("S", bound=StandIn)


def launch(
    cls: type[S],
    name: str,
    *,
    port: int = 0,
    extra_args: list[str] | None = None,
    log_path: str | None = None,
    ready_timeout_s: float = 15.0,
) -> S:
    """Run ``python -m shop.stand_ins.<name>`` and wrap it in ``cls`` once it printed READY."""
    log: IO[bytes] = open(log_path, "a+b") if log_path else tempfile.TemporaryFile()  # noqa: SIM115
    command = [
        sys.executable, "-m", f"shop.stand_ins.{name}",
        "--port", str(port),
        "--parent-pid", str(os.getpid()),
        "--log-level", "INFO" if log_path else "WARNING",
        *(extra_args or []),
    ]
    proc = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        url = _read_ready(proc, name, ready_timeout_s)
    except (OSError, EOFError, ValueError) as exc:
        _terminate(proc, 2.0)
        tail = _tail(log)
        for stream in (proc.stdout, log):
            if stream is not None:
                stream.close()
        raise StandInError(f"stand-in {name} did not become ready ({exc}); its log: {tail}") from None
    return cls(name, url, proc, log)
