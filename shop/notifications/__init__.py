"""Delivering notifications: rendering, e-mail and SMS delivery, campaigns and periodic sweeps.

``shop.notifications.notifications.request_notification`` records what to tell whom; this package
turns each row into one delivered message, exactly once per (template, entity, channel).
"""
