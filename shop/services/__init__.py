"""Domain services: plain functions on a session, runnable without a broker."""
