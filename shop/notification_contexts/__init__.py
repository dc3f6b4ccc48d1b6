"""Per-kind loaders of the context a notification template renders with (see the contract)."""
