"""The operator's web console: jobs, orders, dead letters, queues, schedules, workers, live.

It reads the core's tables (ledger, dead letters, outbox, worker registry, audit log) and acts
through the same functions as the CLI. What belongs to an application (its schedules, its
queue names, what an order is called, its retention policy, how to load its actors) comes in
through ``Extensions``, which the application's entry point fills.
"""
