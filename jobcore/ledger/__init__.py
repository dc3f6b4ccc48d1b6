"""The job ledger: one row per message, merged in memory and written in batches."""
