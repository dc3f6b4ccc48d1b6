"""The main job: a realistic shop workload through real workers, RabbitMQ and PostgreSQL."""
