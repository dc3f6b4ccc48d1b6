"""Development tooling: local stand-ins of the external parties, the main job's workload, dev services.

Nothing in the job-system core or the shop's domain imports this package."""
