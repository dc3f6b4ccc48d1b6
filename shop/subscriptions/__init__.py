"""Subscriptions: renewals on their due dates, exactly once per date."""
