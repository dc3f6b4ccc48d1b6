"""The crash guard's lock: jobs share a process, a suspect runs alone, and nobody waits forever."""

from __future__ import annotations

import threading

from middleware.crash_guard import _Solitude


def test_a_suspect_waits_for_running_jobs_and_new_jobs_wait_for_the_suspect():
    solitude = _Solitude()
    solitude.share()  # a job is running
    alone = threading.Event()
    suspect = threading.Thread(target=lambda: solitude.be_alone(10) and alone.set())
    suspect.start()
    assert not alone.wait(0.2)  # the suspect must not start beside the running job

    newcomer_started = threading.Event()
    newcomer = threading.Thread(target=lambda: (solitude.share(), newcomer_started.set()))
    newcomer.start()
    assert not newcomer_started.wait(0.2)  # a waiting suspect goes first

    solitude.unshare()  # the running job ends
    assert alone.wait(5)
    assert not newcomer_started.wait(0.2)  # nothing starts while the suspect runs alone
    solitude.end_alone()
    assert newcomer_started.wait(5)
    suspect.join(5)
    newcomer.join(5)


def test_a_suspect_that_cannot_be_alone_in_time_gives_up_and_lets_others_run():
    solitude = _Solitude()
    solitude.share()  # a long job that will not end soon
    assert solitude.be_alone(0.1) is False
    started = threading.Event()
    threading.Thread(target=lambda: (solitude.share(), started.set()), daemon=True).start()
    assert started.wait(5)  # the suspect's give-up did not leave others blocked
