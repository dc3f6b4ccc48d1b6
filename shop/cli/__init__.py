"""The shop's operator commands (schedules, notifications, orders, settings, health, backups).

The ``shopjobs`` program (``programs.cli``) registers them beside the core's commands.
"""
