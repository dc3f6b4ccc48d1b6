"""Periodic jobs: the schedule as data, the highly available daemon, operator controls.

- ``schedule``: the production entries; ``entries``: the ``Entry`` type and message ids;
- ``triggers``: DST-safe schedule math on APScheduler 3's triggers;
- ``firing``: one message per fire, misfire policy, persisted progress;
- ``leader``: the advisory-lock election; ``daemon``: the loop behind ``scheduler.py``;
- ``control``: pause, resume, overrides and listings for the CLI; ``process`` and ``summary``:
  starting the daemon and reporting its fires, for tests and the main job.
"""
