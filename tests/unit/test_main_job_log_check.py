"""The main job's log measurement: lines per successful job and ERROR lines at shutdown."""

from __future__ import annotations

import json

from devtools.workload import log_check


def _line(level: str, event: str, logger: str = "shop.orders", **extra: object) -> str:
    return json.dumps({"event": event, "level": level, "logger": logger, **extra}) + "\n"


def test_a_quiet_run_passes_and_errors_after_the_stop_signal_fail_it(tmp_path):
    # Given a log of 10 jobs, one retried (WARNING, no traceback) and one dead letter (ERROR with it)
    log = tmp_path / "workers.log"
    run = "".join(_line("info", f"order {n} paid") for n in range(10))
    run += _line("warning", "transient: SMTP 421, retry 1 in 1s")
    run += _line("error", "dead letter", exception="Traceback ...")
    run += _line("info", "HTTP Request: POST", logger="httpx")
    log.write_text(run)
    stop = log_check.offset(str(log))
    log.write_text(run + _line("info", "worker process stopped"))

    figures = log_check.measure(str(log), stop)
    # Then 14 lines for 10 jobs pass, nothing at shutdown; the httpx INFO line is counted
    assert figures.lines == 14 and figures.shutdown_lines == 1
    assert log_check.failures(figures, succeeded=10) == []
    assert (figures.third_party, figures.warnings_with_traceback) == (1, 0)
    assert figures.errors_without_traceback == 0

    # When an ERROR line and a bare traceback follow the stop signal, Then the run fails on them
    log.write_text(
        run
        + _line("error", "close() called on closed connection", logger="pika")
        + "Traceback (most recent call last):\n"
    )
    figures = log_check.measure(str(log), stop)
    assert log_check.failures(figures, succeeded=10) == ["2 ERROR lines at a clean shutdown"]
    # And a chatty log fails on its lines per job
    assert "lines per successful job" in log_check.failures(figures, succeeded=5)[1]
