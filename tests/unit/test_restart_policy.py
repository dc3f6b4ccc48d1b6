"""The supervisor's restart rule, and the parts of ``dramatiq.cli`` it reuses."""

from __future__ import annotations

import inspect

import pytest
from dramatiq import cli

from jobcore.cli.worker import dramatiq_parser
from jobcore.supervisor import RestartPolicy

POLICY = RestartPolicy(stable_s=30, backoff_min_s=1, backoff_max_s=30, crash_loop_after=6)


@pytest.mark.parametrize(
    ("failures", "delay"), [(1, 0), (2, 1), (3, 2), (4, 4), (6, 16), (7, 30), (40, 30)]
)
def test_a_slot_that_keeps_dying_waits_twice_as_long_each_time_up_to_the_cap(failures, delay):
    assert POLICY.delay(failures) == delay


def test_a_death_after_a_stable_run_starts_the_count_afresh():
    assert POLICY.failures_after_death(4, lived_s=2) == 5
    assert POLICY.failures_after_death(4, lived_s=31) == 1


def test_the_group_crash_loops_only_when_every_worker_slot_keeps_dying():
    assert not POLICY.crash_looping([6, 5])
    assert POLICY.crash_looping([6, 7])
    assert not POLICY.crash_looping([])


def test_the_dramatiq_functions_the_supervisor_runs_keep_their_signatures():
    # dramatiq.cli says its contents may change: an upgrade that changes these must fail here
    assert list(inspect.signature(cli.worker_process).parameters) == [
        "args",
        "worker_id",
        "logging_pipe",
        "canteen",
        "event",
    ]
    assert list(inspect.signature(cli.fork_process).parameters) == [
        "args",
        "fork_id",
        "fork_path",
        "logging_pipe",
    ]


def test_the_worker_command_takes_dramatiqs_options_with_the_application_module_by_default():
    args = dramatiq_parser("actors").parse_args(["--processes", "3", "-Q", "orders"])
    assert (args.broker, args.modules, args.processes, args.queues) == ("actors", [], 3, ["orders"])
    args = dramatiq_parser("actors").parse_args(["actors", "tests.support.faulty_actors"])
    assert (args.broker, args.modules) == ("actors", ["tests.support.faulty_actors"])
