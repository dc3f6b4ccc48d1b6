"""The job-system core: what any Dramatiq-on-RabbitMQ application needs around its actors.

Ledger, sends (outbox), deferred acks, dead letters, cancellations, worker registry, metrics,
redaction, logs and the CLI's job commands. It never imports the shop's domain, ``actors``,
``middleware`` or ``broker``: those sit above it and pass it what it needs."""
