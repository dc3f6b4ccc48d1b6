"""The core's operator commands: jobs, dead letters, queues, workers."""
