"""Payments: the provider's charges and refunds, and its signed webhooks."""
